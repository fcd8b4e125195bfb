//! The `ctx` object a closure body receives.

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map};

use crate::exec::{JobSpec, log};
use crate::ui::Reporter;

/// `ctx`: the running proc's name, args, params, dependency results and log.
#[derive(Clone)]
pub(super) struct Ctx(Arc<CtxData>);

struct CtxData {
    name: String,
    args: Map,
    params: Map,
    results: Map,
    changed_deps: Array,
    input_fingerprint: Dynamic,
    log: PathBuf,
}

impl Ctx {
    /// The dependencies that really ran in this run, as `ctx.deps_changed` and
    /// `ctx.changed_deps` read them. Read while some did, they make the body's result
    /// [`super::job::unrepeatable`]: a later run judges the proc UP_TO_DATE only when none
    /// of its dependencies ran in that run, where running the body would read them empty,
    /// so a result made of a non-empty list is what no later run would give. A result made
    /// of an empty one is: it is cached as usual.
    fn changed_deps(&self) -> &Array {
        if !self.0.changed_deps.is_empty() {
            super::job::unrepeatable();
        }
        &self.0.changed_deps
    }

    /// The context of one attempt of a job.
    pub(super) fn new(job: &JobSpec, log: PathBuf) -> Ctx {
        Ctx(Arc::new(CtxData {
            name: job.name.to_string(),
            args: crate::graph::args_map(&job.args),
            params: job.params.clone(),
            results: job.dep_results.clone(),
            changed_deps: job.changed_deps.iter().map(|d| d.clone().into()).collect(),
            input_fingerprint: job.input_fingerprint.clone(),
            log,
        }))
    }
}

/// Registers the `Ctx` type, its properties, `ctx.log(...)` and `ctx.progress(...)`.
pub(super) fn register(engine: &mut Engine, reporter: Arc<dyn Reporter>) {
    let (r1, r2, r3) = (reporter.clone(), reporter.clone(), reporter);
    // A fraction, clamped to 0..=1 (NaN is 0); an integer is one too: `ctx.progress(1)`
    // is done, not an error.
    let percent = |fraction: f64| {
        let pct = if fraction.is_nan() {
            0.0
        } else {
            (fraction.clamp(0.0, 1.0) * 100.0).round()
        };
        format!("{pct}%")
    };
    engine
        .register_fn("progress", move |c: &mut Ctx, fraction: f64| {
            r1.progress(&c.0.name, &percent(fraction));
        })
        .register_fn("progress", move |c: &mut Ctx, fraction: i64| {
            r3.progress(&c.0.name, &percent(fraction as f64));
        })
        // One line of text: a newline would break the plain display's `PROGRESS` line and
        // an escape sequence would reach the terminal, so control characters are spaces.
        .register_fn("progress", move |c: &mut Ctx, text: &str| {
            let line: String = text
                .chars()
                .map(|ch| if ch.is_control() { ' ' } else { ch })
                .collect();
            r2.progress(&c.0.name, &line);
        });
    engine
        .register_type_with_name::<Ctx>("Ctx")
        .register_get("name", |c: &mut Ctx| c.0.name.clone())
        .register_get("args", |c: &mut Ctx| c.0.args.clone())
        .register_get("params", |c: &mut Ctx| c.0.params.clone())
        .register_get("results", |c: &mut Ctx| c.0.results.clone())
        .register_get("deps_changed", |c: &mut Ctx| !c.changed_deps().is_empty())
        .register_get("changed_deps", |c: &mut Ctx| c.changed_deps().clone())
        .register_get("input_fingerprint", |c: &mut Ctx| {
            c.0.input_fingerprint.clone()
        })
        .register_fn(
            "log",
            |c: &mut Ctx, msg: &str| -> Result<(), Box<rhai::EvalAltResult>> {
                log::append_line(&c.0.log, msg)
                    .map_err(|e| format!("failed to write log {}: {e}", c.0.log.display()).into())
            },
        )
        // Any other value as `print` and `log_info` show it (`ctx.log(n)`, `ctx.log(map)`).
        .register_fn(
            "log",
            |c: &mut Ctx, msg: rhai::Dynamic| -> Result<(), Box<rhai::EvalAltResult>> {
                log::append_line(&c.0.log, &msg.to_string())
                    .map_err(|e| format!("failed to write log {}: {e}", c.0.log.display()).into())
            },
        )
        .register_fn("to_string", |c: &mut Ctx| format!("ctx({})", c.0.name));
    register_body_only(engine);
}

/// A body-only member read from a scheduler closure's `ctx` map (see
/// [`crate::graph::BodyOnly`]): reading into it (`ctx.results.a`, `ctx.results["a"]`,
/// which Rhai turns into the indexer) is an error naming the rule, and printed it says
/// what it is.
fn register_body_only(engine: &mut Engine) {
    use crate::graph::BodyOnly;
    fn rule(member: &str) -> String {
        let kind = crate::exec::evaluating().unwrap_or("a closure evaluated for the scheduler");
        format!(
            "{kind} has no ctx.{member}: only a proc's body has it; this ctx is a map of name, args and params"
        )
    }
    engine
        .register_type_with_name::<BodyOnly>("BodyOnly")
        .register_indexer_get(
            |b: &mut BodyOnly, _key: &str| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
                Err(rule(b.0).into())
            },
        )
        .register_indexer_get(
            |b: &mut BodyOnly, _key: i64| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
                Err(rule(b.0).into())
            },
        )
        .register_fn("to_string", |b: &mut BodyOnly| {
            format!("(ctx.{} is only a proc body's)", b.0)
        })
        .register_fn("to_debug", |b: &mut BodyOnly| {
            format!("(ctx.{} is only a proc body's)", b.0)
        });
}

/// Makes `Result<(), Box<EvalAltResult>>` inference work for `ctx.log`.
type _LogResult = Result<(), Box<rhai::EvalAltResult>>;
