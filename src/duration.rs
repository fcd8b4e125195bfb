//! Durations as scripts write them: a number of seconds (`30`, `0.5`) or a string with
//! units (`"300ms"`, `"2m"`, `"1h 30m"`, `"2d"`).

use std::time::Duration;

use rhai::Dynamic;

/// A value that is not a duration (or not a time limit); the message says what was
/// expected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DurationError {
    /// Not a duration; the value as written.
    #[error(
        "invalid duration {0}: expected seconds (30, 0.5) or a string such as \"300ms\", \"2m\", \"2d\""
    )]
    Invalid(String),
    /// A negative number of seconds; the value as written.
    #[error("invalid duration {0}: a duration cannot be negative")]
    Negative(String),
    /// More than a [`Duration`] holds (`1e300`, `"inf"`); the value as written.
    #[error("duration {0} is too long: the longest is {longest}s (about 584 billion years)", longest = u64::MAX)]
    TooLong(String),
    /// A time limit of zero.
    #[error("must be more than 0 (leave it out for no time limit)")]
    Zero,
}

/// Parses a duration value.
pub(crate) fn parse(v: &Dynamic) -> Result<Duration, DurationError> {
    let written = || {
        if v.is_unit() {
            "() (nothing)".to_string()
        } else if v.is_string() && v.to_string().is_empty() {
            "\"\" (an empty string)".to_string()
        } else if v.is_fnptr() {
            // A closure's text would be its internal name (`Fn(anon$8b39...)`).
            "(a closure)".to_string()
        } else {
            v.to_string()
        }
    };
    if let Ok(i) = v.as_int() {
        return u64::try_from(i)
            .map(Duration::from_secs)
            .map_err(|_| DurationError::Negative(written()));
    }
    if let Ok(f) = v.as_float() {
        return seconds(f, written);
    }
    let s = v
        .clone()
        .into_string()
        .map_err(|_| DurationError::Invalid(written()))?;
    let s = s.trim();
    if let Ok(f) = s.parse::<f64>() {
        return seconds(f, written);
    }
    humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => DurationError::TooLong(written()),
        _ => DurationError::Invalid(written()),
    })
}

/// `f` seconds as a duration: not a number (`NaN`) is no duration, a negative one is
/// refused as such, and one past [`Duration::MAX`] (infinity too) as too long.
fn seconds(f: f64, written: impl Fn() -> String) -> Result<Duration, DurationError> {
    Duration::try_from_secs_f64(f).map_err(|_| {
        if f.is_nan() {
            DurationError::Invalid(written())
        } else if f < 0.0 {
            DurationError::Negative(written())
        } else {
            DurationError::TooLong(written())
        }
    })
}

/// The instant `d` from now. A duration a script gives may be past what an `Instant`
/// holds (`kill_grace: "18446744073709551615s"`): such a one is a hundred years, which
/// never comes either.
pub(crate) fn from_now(d: Duration) -> std::time::Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = std::time::Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + CENTURY)
}

/// A time limit: a duration more than zero. A zero limit would end a command as it
/// starts, or not, depending on which comes first (`timeout 0` means no limit to GNU
/// `timeout`, and none to `curl --max-time 0`): it is refused, leaving the option out is
/// the way to have no limit.
pub(crate) fn parse_limit(v: &Dynamic) -> Result<Duration, DurationError> {
    match parse(v)? {
        d if d.is_zero() => Err(DurationError::Zero),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_units() {
        assert_eq!(
            parse(&Dynamic::from(30_i64)).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse(&Dynamic::from(0.5_f64)).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse(&Dynamic::from("300ms")).unwrap(),
            Duration::from_millis(300)
        );
        assert_eq!(
            parse(&Dynamic::from("2m")).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse(&Dynamic::from("2d")).unwrap(),
            Duration::from_secs(172_800)
        );
        assert_eq!(
            parse(&Dynamic::from("1.5")).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn a_limit_of_zero_is_refused() {
        for zero in [
            Dynamic::from(0_i64),
            Dynamic::from("0s"),
            Dynamic::from(0.0_f64),
        ] {
            assert!(matches!(parse_limit(&zero), Err(DurationError::Zero)));
        }
        assert_eq!(
            parse_limit(&Dynamic::from("2s")).unwrap(),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn a_duration_past_the_longest_is_too_long_and_a_negative_one_negative() {
        for long in [
            Dynamic::from(1e300_f64),
            Dynamic::from("1e300"),
            Dynamic::from("inf"),
            Dynamic::from("18446744073709551616s"),
            Dynamic::from("600000000000y"),
        ] {
            let e = parse(&long).unwrap_err();
            assert!(matches!(e, DurationError::TooLong(_)), "{long}: {e}");
            assert!(
                e.to_string().ends_with(
                    "is too long: the longest is 18446744073709551615s (about 584 billion years)"
                ),
                "{e}"
            );
        }
        for negative in [
            Dynamic::from(-1_i64),
            Dynamic::from(-0.5_f64),
            Dynamic::from("-2"),
        ] {
            let e = parse(&negative).unwrap_err();
            assert!(matches!(e, DurationError::Negative(_)), "{negative}: {e}");
        }
        assert!(matches!(
            parse(&Dynamic::from(f64::NAN)),
            Err(DurationError::Invalid(_))
        ));
        assert_eq!(
            parse(&Dynamic::from("18446744073709551615s")).unwrap(),
            Duration::from_secs(u64::MAX)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(&Dynamic::from(-1_i64)).is_err());
        assert!(
            parse(&Dynamic::from("soon"))
                .unwrap_err()
                .to_string()
                .contains("soon")
        );
        assert!(parse(&Dynamic::from(true)).is_err());
        // `()` (an unset option) is named, not shown as an empty word.
        assert!(
            parse(&Dynamic::UNIT)
                .unwrap_err()
                .to_string()
                .starts_with("invalid duration () (nothing): ")
        );
        assert!(
            parse(&Dynamic::from(""))
                .unwrap_err()
                .to_string()
                .starts_with("invalid duration \"\" (an empty string): ")
        );
    }
}
