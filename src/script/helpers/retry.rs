//! `retry_loop(f, times, delay, backoff)`, the loop of the stdlib's `retry::run` (which
//! checks the options). It is native so that no script operation runs between an
//! attempt's failure and the pause: the engine stops a script within a few operations of
//! a Ctrl-C, and a stop there reported "terminated because the run was aborted" instead
//! of the attempt's error, at random.
//!
//! Ctrl-C (or `--fail-fast`, or the proc's timeout) while an attempt runs ends the attempt
//! as it ends any code, and that is what the proc reports; once an attempt has failed,
//! its error is what the proc reports, wherever the Ctrl-C lands afterwards. The pause,
//! the warning and the check for cancellation are the engine's `sleep` and `log_warn`, so
//! that `prun check` (whose `sleep` returns at once) does not wait either.

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext, Position};

use super::R;
use crate::script::values::SkipSignal;

/// Registers `retry_loop`.
pub(super) fn register(engine: &mut Engine) {
    engine.register_fn(
        "retry_loop",
        |ctx: NativeCallContext, f: FnPtr, times: i64, delay: f64, backoff: f64| {
            retry_loop(&ctx, &f, times, delay, backoff)
        },
    );
}

/// The longest pause between two attempts, in seconds: the largest float below 2^64, the
/// longest duration `sleep` takes (u64::MAX seconds, some 584 billion years). A pause
/// that `backoff` grows past it stays at it: a pause of 1e308 s, or an infinite one,
/// waits as long as the longest (until the run is cancelled), and does not end the
/// retries early as a `sleep` refusing it did.
const LONGEST_PAUSE: f64 = 18_446_744_073_709_549_568.0;

/// Calls `f` until it returns, at most `times` times, pausing `delay` seconds before the
/// second attempt and `backoff` times longer before each further one, up to
/// [`LONGEST_PAUSE`].
fn retry_loop(
    ctx: &NativeCallContext,
    f: &FnPtr,
    times: i64,
    delay: f64,
    backoff: f64,
) -> R<Dynamic> {
    let mut delay = delay.min(LONGEST_PAUSE);
    let mut attempt = 1;
    loop {
        let e = match f.call_within_context::<Dynamic>(ctx, ()) {
            Ok(v) => return Ok(v),
            Err(e) => unlocated(*e),
        };
        if attempt >= times || !worth_retrying(ctx, &e) {
            return Err(e);
        }
        let warned = format!(
            "attempt {attempt} of {times} failed, retrying in {}s: {}",
            seconds(delay),
            shown(&e)
        );
        let paused = ctx
            .call_fn::<()>("log_warn", (warned,))
            .and_then(|()| ctx.call_fn::<()>("sleep", (delay,)));
        if paused.is_err() {
            return Err(e);
        }
        delay = next_pause(delay, backoff);
        attempt += 1;
    }
}

/// The pause after one of `delay` seconds: `backoff` times longer, at most
/// [`LONGEST_PAUSE`]; a pause of 0 stays 0 (even with an infinite `backoff`).
fn next_pause(delay: f64, backoff: f64) -> f64 {
    if delay == 0.0 {
        return 0.0;
    }
    (delay * backoff).min(LONGEST_PAUSE)
}

/// Seconds as the warning shows them: `1`, `0.25`, and with an exponent when far from 1
/// (`1e-300`, `1.844674407370955e19`), where a plain decimal runs to hundreds of digits.
fn seconds(secs: f64) -> String {
    if secs == 0.0 || (1e-4..1e16).contains(&secs) {
        format!("{secs}")
    } else {
        format!("{secs:e}")
    }
}

/// Whether an error is a failure to try again: not a `skip()` or `no_change()` (a
/// decision), not an error a script cannot catch (the engine's stop), and not once the
/// proc (or, at the top level, the run) is being terminated: `sleep(0)` throws then.
fn worth_retrying(ctx: &NativeCallContext, e: &EvalAltResult) -> bool {
    let skipped =
        matches!(e.unwrap_inner(), EvalAltResult::ErrorRuntime(v, _) if v.is::<SkipSignal>());
    !skipped && e.unwrap_inner().is_catchable() && ctx.call_fn::<()>("sleep", (0_i64,)).is_ok()
}

/// An error as the warning shows it: a thrown value as it is, another error by its
/// message.
fn shown(e: &EvalAltResult) -> String {
    match e.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        inner => crate::diag::message(inner),
    }
}

/// An attempt's error as `retry::run` throws it: without the frame of the closure's call
/// and without a position, which Rhai gives in the module's file (`<stdlib>/retry.rhai`)
/// though the closure is the caller's; the frames of the call of `retry::run` say where
/// it is.
fn unlocated(e: EvalAltResult) -> Box<EvalAltResult> {
    let mut e = match e {
        EvalAltResult::ErrorInFunctionCall(name, _, inner, _) if name.starts_with("anon$") => inner,
        other => Box::new(other),
    };
    e.set_position(Position::NONE);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_grows_by_the_backoff_up_to_the_longest_and_no_further() {
        assert_eq!(next_pause(1.0, 2.0), 2.0);
        assert_eq!(next_pause(1e300, 1e300), LONGEST_PAUSE);
        assert_eq!(next_pause(1.0, f64::INFINITY), LONGEST_PAUSE);
        assert_eq!(next_pause(0.0, f64::INFINITY), 0.0);
        assert_eq!(next_pause(5.0, 0.0), 0.0);
        assert_eq!(seconds(1.0), "1");
        assert_eq!(seconds(0.25), "0.25");
        assert_eq!(seconds(1e-300), "1e-300");
        assert_eq!(seconds(LONGEST_PAUSE), "1.844674407370955e19");
        assert!(std::time::Duration::try_from_secs_f64(LONGEST_PAUSE).is_ok());
        assert!(
            std::time::Duration::try_from_secs_f64(LONGEST_PAUSE * (1.0 + f64::EPSILON)).is_err()
        );
    }
}
