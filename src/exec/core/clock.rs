//! Times kept in a proc's run state, one word each: a run keeps the state of every proc
//! to its end, and `Option<SystemTime>`, `Option<Instant>` and `Option<Duration>` take two.

use std::time::{Duration, Instant, SystemTime};

/// A duration, or none: nanoseconds (`u64::MAX` for none). A duration of 584 years or
/// more is kept as the longest one that fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span(u64);

impl Span {
    /// No duration.
    pub(super) const NONE: Span = Span(u64::MAX);

    /// This duration.
    pub(super) fn of(d: Duration) -> Span {
        Span(u64::try_from(d.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1)))
    }

    /// The duration, if any.
    pub(super) fn get(self) -> Option<Duration> {
        (self != Span::NONE).then(|| Duration::from_nanos(self.0))
    }

    /// Whether there is none.
    pub(super) fn is_none(self) -> bool {
        self == Span::NONE
    }

    /// The duration, leaving none.
    pub(super) fn take(&mut self) -> Option<Duration> {
        std::mem::replace(self, Span::NONE).get()
    }
}

/// A moment of the run, or none: the time since the run's start (an [`Instant`], as a
/// [`Span`] from [`Epoch`]).
pub(super) type Moment = Span;

/// The start of a run, from which [`Moment`]s count.
#[derive(Debug, Clone, Copy)]
pub(super) struct Epoch(Instant);

impl Epoch {
    /// Now.
    pub(super) fn now() -> Epoch {
        Epoch(Instant::now())
    }

    /// The current moment.
    pub(super) fn moment(self) -> Moment {
        Span::of(self.0.elapsed())
    }

    /// The time elapsed since `m`.
    pub(super) fn since(self, m: Duration) -> Duration {
        self.0.elapsed().saturating_sub(m)
    }
}

/// A wall-clock time, or none: nanoseconds since the Unix epoch, negative before it
/// (`i64::MIN` for none), which holds any time from 1678 to 2262.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WallTime(i64);

impl WallTime {
    /// No time.
    pub(super) const NONE: WallTime = WallTime(i64::MIN);

    /// This time.
    pub(super) fn of(t: SystemTime) -> WallTime {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => WallTime(nanos(after)),
            Err(before) => WallTime(-nanos(before.duration())),
        }
    }

    /// The time, if any.
    pub(super) fn get(self) -> Option<SystemTime> {
        if self == WallTime::NONE {
            return None;
        }
        let magnitude = Duration::from_nanos(self.0.unsigned_abs());
        Some(if self.0 < 0 {
            SystemTime::UNIX_EPOCH - magnitude
        } else {
            SystemTime::UNIX_EPOCH + magnitude
        })
    }

    /// Whether there is none.
    pub(super) fn is_none(self) -> bool {
        self == WallTime::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_back_to_the_nanosecond() {
        let now = SystemTime::now();
        assert_eq!(WallTime::of(now).get(), Some(now));
        let before = SystemTime::UNIX_EPOCH - Duration::new(86_400, 7);
        assert_eq!(WallTime::of(before).get(), Some(before));
        assert_eq!(WallTime::NONE.get(), None);
        let d = Duration::new(3, 141_592_653);
        assert_eq!(Span::of(d).get(), Some(d));
        assert_eq!(Span::of(Duration::ZERO).get(), Some(Duration::ZERO));
        assert_eq!(Span::NONE.get(), None);
        assert_eq!(
            Span::of(Duration::MAX).get(),
            Some(Duration::from_nanos(u64::MAX - 1))
        );
        let mut s = Span::of(d);
        assert_eq!(s.take(), Some(d));
        assert!(s.is_none());
    }
}
