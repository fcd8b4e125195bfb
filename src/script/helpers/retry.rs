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

/// Calls `f` until it returns, at most `times` times, pausing `delay` seconds before the
/// second attempt and `backoff` times longer before each further one.
fn retry_loop(
    ctx: &NativeCallContext,
    f: &FnPtr,
    times: i64,
    delay: f64,
    backoff: f64,
) -> R<Dynamic> {
    let mut delay = delay;
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
            "attempt {attempt} of {times} failed, retrying in {delay}s: {}",
            shown(&e)
        );
        let paused = ctx
            .call_fn::<()>("log_warn", (warned,))
            .and_then(|()| ctx.call_fn::<()>("sleep", (delay,)));
        if paused.is_err() {
            return Err(e);
        }
        delay *= backoff;
        attempt += 1;
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
