//! Reading the history's columns whatever another tool or a hand edit left in them: text
//! that is not UTF-8 is read lossily (U+FFFD for each bad sequence), a value of another
//! type than the column's is read as what it can be taken for, or as nothing. The
//! history is shown, not trusted: `prun history` and `prun report` show what they can and
//! go on, and the live display's expected durations skip what is not a duration, instead
//! of an error (which a writable store takes for a corrupt DB, and moves aside).

use rusqlite::Row;
use rusqlite::types::ValueRef;

/// Column `i` as text, `None` when it is NULL. A number is its decimal text; text or a
/// blob that is not UTF-8 is read lossily.
pub(super) fn opt_text(r: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    })
}

/// Column `i` as text, empty when it is NULL (see [`opt_text`]).
pub(super) fn text(r: &Row, i: usize) -> rusqlite::Result<String> {
    Ok(opt_text(r, i)?.unwrap_or_default())
}

/// Column `i` as a number, `None` when it is NULL or holds no number (text that reads
/// as one counts).
pub(super) fn opt_f64(r: &Row, i: usize) -> rusqlite::Result<Option<f64>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(x) => Some(x),
        ValueRef::Text(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.trim().parse().ok()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    })
}

/// Column `i` as an integer of type `T`, `None` when it is NULL, holds no integer or
/// one out of `T`'s range.
pub(super) fn opt_int<T: TryFrom<i64>>(r: &Row, i: usize) -> rusqlite::Result<Option<T>> {
    let n = match r.get_ref(i)? {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(x as i64),
        ValueRef::Text(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.trim().parse().ok()),
        _ => None,
    };
    Ok(n.and_then(|n| T::try_from(n).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// The columns of `SELECT values`, read with `read`.
    fn read<T>(values: &str, read: impl Fn(&Row) -> rusqlite::Result<T>) -> T {
        let conn = Connection::open_in_memory().expect("open");
        conn.query_row(&format!("SELECT {values}"), [], |r| read(r))
            .expect("read")
    }

    #[test]
    fn text_that_is_not_utf8_is_read_lossily_and_numbers_as_their_text() {
        let got = read("CAST(x'61ff62' AS TEXT), x'ff', 7, NULL", |r| {
            Ok((text(r, 0)?, text(r, 1)?, text(r, 2)?, opt_text(r, 3)?))
        });
        assert_eq!(
            got,
            ("a\u{fffd}b".into(), "\u{fffd}".into(), "7".into(), None)
        );
    }

    #[test]
    fn a_number_column_holding_anything_else_is_none_or_what_it_reads_as() {
        let got = read("'x', ' 2.5', CAST(x'ff' AS TEXT), 3", |r| {
            Ok((
                opt_f64(r, 0)?,
                opt_f64(r, 1)?,
                opt_f64(r, 2)?,
                opt_f64(r, 3)?,
            ))
        });
        assert_eq!(got, (None, Some(2.5), None, Some(3.0)));
        let got = read("'x', '12', 4.0, -1, 1e300", |r| {
            Ok((
                opt_int::<i64>(r, 0)?,
                opt_int::<i64>(r, 1)?,
                opt_int::<i64>(r, 2)?,
                opt_int::<u32>(r, 3)?,
                opt_int::<i64>(r, 4)?,
            ))
        });
        assert_eq!(got, (None, Some(12), Some(4), None, None));
    }
}
