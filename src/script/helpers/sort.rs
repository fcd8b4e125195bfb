//! `array.sort(comparator)` and `array.sort_by(comparator)`, replacing Rhai's own.
//!
//! Rhai's ignores what its comparator throws, and any value that is not an integer or a
//! bool (the float of `|a, b| a - b` on floats), ordering those pairs by type instead: the
//! array comes back unsorted, without an error. It also catches every panic of the
//! comparator, so a bug (a native function that panics) became the script error "error in
//! comparer for sorting". This one is a stable merge sort that never panics: an error of
//! the comparator is the error of `sort`, a value that is no order is an error naming it,
//! and a panic goes on to the run, which ends as an internal error.

use std::cmp::Ordering;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext};

type R<T> = Result<T, Box<EvalAltResult>>;

/// Registers `sort` and `sort_by` with a comparator, and `sort` with the name of a
/// function (Rhai's deprecated form, which calls its own sort).
pub(super) fn register(engine: &mut Engine) {
    for name in ["sort", "sort_by"] {
        engine.register_fn(
            name,
            |ctx: NativeCallContext, array: &mut Array, comparator: FnPtr| {
                sort(array, |a, b| order(&ctx, &comparator, a, b))
            },
        );
    }
    engine.register_fn(
        "sort",
        |ctx: NativeCallContext, array: &mut Array, function: &str| -> R<()> {
            let comparator = FnPtr::new(function)?;
            sort(array, |a, b| order(&ctx, &comparator, a, b))
        },
    );
}

/// What `comparator` says of `a` and `b`: a negative integer or `true` is "before", a
/// positive integer or `false` "after", 0 the same.
fn order(ctx: &NativeCallContext, comparator: &FnPtr, a: &Dynamic, b: &Dynamic) -> R<Ordering> {
    let v = comparator.call_raw(ctx, None, [a.clone(), b.clone()])?;
    if let Ok(n) = v.as_int() {
        return Ok(n.cmp(&0));
    }
    if let Ok(before) = v.as_bool() {
        return Ok(if before {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    let got = match v.as_float() {
        Ok(x) => format!("the float {x:?}"),
        Err(_) => crate::diag::value_words(&v),
    };
    Err(format!(
        "the comparator of sort() must return an integer (negative: before, 0: the same, \
         positive: after) or a bool (true: before), not {got}"
    )
    .into())
}

/// Sorts `items` stably by `cmp`; on an error of `cmp` they are left as they were. A
/// `cmp` that is not a consistent order gives some order of the same items.
fn sort<T: Default>(items: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> R<Ordering>) -> R<()> {
    let n = items.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut merged: Vec<usize> = Vec::with_capacity(n);
    let mut width = 1;
    while width < n {
        merged.clear();
        for start in (0..n).step_by(2 * width) {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j) = (start, mid);
            while i < mid && j < end {
                if cmp(&items[order[i]], &items[order[j]])? == Ordering::Greater {
                    merged.push(order[j]);
                    j += 1;
                } else {
                    merged.push(order[i]);
                    i += 1;
                }
            }
            merged.extend_from_slice(&order[i..mid]);
            merged.extend_from_slice(&order[j..end]);
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    let mut old = std::mem::take(items);
    *items = order.iter().map(|&i| std::mem::take(&mut old[i])).collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &[i64]) -> Vec<i64> {
        let mut v = v.to_vec();
        sort(&mut v, |a, b| Ok(a.cmp(b))).unwrap();
        v
    }

    #[test]
    fn sorts_every_length_and_keeps_equal_items_in_order() {
        for n in 0..40 {
            let v: Vec<i64> = (0..n).map(|i| (i * 7919) % 13).collect();
            let mut want = v.clone();
            want.sort();
            assert_eq!(sorted(&v), want, "{v:?}");
        }
        let mut pairs: Vec<(i64, i64)> = (0..50).map(|i| (i % 3, i)).collect();
        sort(&mut pairs, |a, b| Ok(a.0.cmp(&b.0))).unwrap();
        assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0 || w[0].1 < w[1].1));
    }

    #[test]
    fn an_error_leaves_the_items_as_they_were() {
        let mut v = vec![3, 1, 2, 5, 4];
        let mut calls = 0;
        let r = sort(&mut v, |a, b| {
            calls += 1;
            if calls == 3 {
                Err("no".into())
            } else {
                Ok(a.cmp(b))
            }
        });
        assert!(r.is_err());
        assert_eq!(v, [3, 1, 2, 5, 4]);
    }

    #[test]
    fn an_inconsistent_order_gives_the_same_items() {
        let mut v: Vec<i64> = (0..500).collect();
        let mut state = 12345_u64;
        sort(&mut v, |_, _| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            Ok(match state >> 62 {
                0 => Ordering::Less,
                1 => Ordering::Equal,
                _ => Ordering::Greater,
            })
        })
        .unwrap();
        v.sort();
        assert_eq!(v, (0..500).collect::<Vec<_>>());
    }
}
