//! Judging a proc before it runs (is it UP_TO_DATE?) and checking its outputs after it
//! ran: the file-system side of incremental runs, done on a worker thread.
//!
//! Both resolve `inputs` and `outputs`, which calls script closures, expands globs, walks
//! directories and stats files, so neither may happen while run state is locked. The core
//! hands a [`JudgeSpec`] (everything judging needs, copied out of it) to the executor, which
//! calls [`judge`] on a worker thread and sends the [`Judgement`] back; a finished job's
//! outputs are checked with [`check_outputs`] before the job reports its end.

use std::sync::Arc;

use rhai::{Dynamic, Map};
use tokio_util::sync::CancellationToken;

use super::cache::{self, Cache, FilesError, Fingerprint};
use super::state::Outcome;
use crate::graph::{Body, ProcId, ProcNode};
use crate::store::{CacheRow, Store};

/// What judging one proc needs, copied out of the core.
#[derive(Debug)]
pub(crate) struct JudgeSpec {
    pub id: ProcId,
    pub node: ProcNode,
    pub params: Map,
    /// The stamps of its dependencies, in order.
    pub dep_stamps: Vec<(String, String)>,
    /// Its cached row, unless a dependency ran in this run (its stamp then differs from
    /// the one the row was saved with).
    pub row: Option<Arc<CacheRow>>,
    /// Whether it may be UP_TO_DATE: not `--full` or `no_skip`, and no dependency ran in
    /// this run.
    pub may_skip: bool,
    /// The task DB, where a row that still matches is forgotten before its proc runs
    /// again (`None` in a dry run, which writes nothing).
    pub store: Option<Arc<Store>>,
    /// What the task DB's key of the script's rows starts with (see [`Cache::prefix`]).
    pub prefix: Arc<str>,
    /// prun's own files, never part of a directory input (shared by a batch).
    pub own: Arc<super::tree::OwnFiles>,
    /// The directory prun runs in (see [`Cache::cwd`]; empty without a task DB).
    pub cwd: Option<Arc<std::path::Path>>,
    /// What the run's policy changes in what procs give (see [`Cache::under`]; empty
    /// without a task DB).
    pub policy: Arc<str>,
    /// Fires when an abort ends the run's jobs (`--fail-fast`, Ctrl-C): the commands and
    /// sleeps of its `inputs` closures end then too.
    pub cancel: CancellationToken,
}

/// The verdict on a proc about to run.
#[derive(Debug)]
pub(crate) enum Judgement {
    /// Nothing it depends on changed: it is UP_TO_DATE with this cached result.
    Fresh(Dynamic),
    /// It must run; its fingerprint is saved with its result.
    Stale(Fingerprint),
    /// Its inputs cannot be resolved (a closure failed, a bad glob), or no thread could
    /// judge it: it fails with this message.
    Failed(String),
}

/// Judges a batch of procs (see [`judge_one`]), then forgets at once, in one commit, the
/// cached results that still match the procs of it that run again. When that commit
/// fails (a full disk, a read-only file system), those procs fail without running: the
/// rows are still there, and a run of theirs killed half-way, or failing, would leave a
/// result that the next run takes as UP_TO_DATE beside what it half wrote.
pub(crate) fn judge_all(batch: &[JudgeSpec]) -> Vec<(ProcId, Judgement)> {
    // The places in `batch` (and in the verdicts) of the procs whose rows are forgotten.
    let mut forget = Vec::new();
    let mut verdicts: Vec<(ProcId, Judgement)> = batch
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (verdict, matched) = super::scheduler::cancelled_by(&s.cancel, || judge_one(s));
            if matched && matches!(verdict, Judgement::Stale(_)) {
                forget.push(i);
            }
            (s.id, verdict)
        })
        .collect();
    let Some(store) = batch.iter().find_map(|s| s.store.as_ref()) else {
        return verdicts;
    };
    let names = forget
        .iter()
        .map(|&i| format!("{}{}", batch[i].prefix, batch[i].node.name))
        .collect();
    if let Err(e) = store.forget_now(names) {
        let error = format!(
            "its cached result could not be forgotten before it runs again: {e} (it did not run: killed half-way, or failing, it would have left that result to be taken as UP_TO_DATE beside what it half wrote; free some space or make the DB writable)"
        );
        for &i in &forget {
            verdicts[i].1 = Judgement::Failed(error.clone());
        }
    }
    verdicts
}

/// Judges a proc the core judges itself: one without `inputs` and `outputs` (its
/// fingerprint reads no file) and without a cached row to forget (see [`judge_all`]).
pub(super) fn judge(spec: &JudgeSpec) -> Judgement {
    judge_one(spec).0
}

/// Computes the fingerprint of a proc and compares it with its cached row; also says
/// whether that row still matches it (an eligible proc, the same fingerprint). Calls the
/// proc's `inputs` and `outputs` closures and reads the file system: never call it while
/// run state is locked.
///
/// Eligible for UP_TO_DATE are procs with a dependency or a resolved input file (as in
/// parproc: a proc with neither always runs) whose outputs exist and are fresh, unless
/// their closure reads other procs ([`crate::graph::Callable::cacheable`]).
///
/// A proc whose row still matches but that runs again (`--full`, `no_skip`, a missing
/// or expired output) loses that row before it starts: were the run killed while it
/// runs, the next run would take the old result beside the half-written outputs.
fn judge_one(spec: &JudgeSpec) -> (Judgement, bool) {
    let cwd = spec.cwd.as_deref().unwrap_or(std::path::Path::new(""));
    let (params, node, policy) = (&spec.params, &spec.node, &*spec.policy);
    let fp = match cache::fingerprint(params, node, &spec.dep_stamps, &spec.own, cwd, policy) {
        Ok(fp) => fp,
        Err(e) => return (Judgement::Failed(e.to_string()), false),
    };
    let Some(row) = &spec.row else {
        return (Judgement::Stale(fp), false);
    };
    let cacheable = match spec.node.body() {
        Body::Closure(cb) => cb.cacheable(),
        Body::Cmd(_) | Body::Shell(_) => true,
    };
    let eligible = cacheable && (!spec.dep_stamps.is_empty() || !fp.files.is_empty());
    // A row of a proc with declared outputs ends with their stamp as its run left them.
    let (saved, outputs) = match row.fingerprint.split_once(OUTPUTS_MARK) {
        Some((saved, outputs)) => (saved, Some(outputs)),
        None => (&*row.fingerprint, None),
    };
    if !eligible || !fp.matches(saved) {
        return (Judgement::Stale(fp), false);
    }
    if spec.may_skip && outputs_as_left(spec, outputs) {
        // A result that cannot be read back (a damaged row) is no result: it runs again.
        if let Ok(result) = serde_json::from_str::<Dynamic>(&row.result) {
            return (Judgement::Fresh(result), true);
        }
    }
    (Judgement::Stale(fp), true)
}

/// What separates a row's fingerprint from the stamp of its proc's outputs (a fingerprint
/// holds hex digits, `.`, `/` and `:` only).
const OUTPUTS_MARK: char = '|';

/// Whether a proc's declared outputs are all there, fresh, and as the run that saved its
/// row (whose stamp of them is `saved`) left them. True for a proc without outputs.
fn outputs_as_left(spec: &JudgeSpec, saved: Option<&str>) -> bool {
    if spec.node.def.outputs.is_empty() {
        return true;
    }
    cache::outputs_fresh(&spec.params, &spec.node).is_some_and(|now| saved == Some(&*now))
}

/// Checks a finished proc's declared outputs afresh (never from a cache of stats): `Err`
/// names each output that is missing or stale; `Ok` has their stamp (`None` without
/// outputs), saved with its result (see [`Core::outputs_read`]). Calls `outputs` closures
/// and stats files: never call it while run state is locked.
///
/// [`Core::outputs_read`]: super::Core::outputs_read
pub(super) fn check_outputs(node: &ProcNode, params: &Map) -> Result<Option<String>, FilesError> {
    if node.def.outputs.is_empty() {
        return Ok(None);
    }
    cache::check_outputs(params, node).map(Some)
}

/// The stamp of a proc's declared outputs as they are (`None` without outputs), for one
/// that ended with `skip` or `no_change`, whose outputs are not checked.
pub(super) fn outputs_stamp(node: &ProcNode, params: &Map) -> Option<String> {
    if node.def.outputs.is_empty() {
        return None;
    }
    cache::outputs_stamp(params, node)
}

/// A proc's result as every run sees it, cached or not: data JSON can hold (anything
/// else fails the proc, as it would fail saving it in the task DB), characters as strings
/// (as the task DB gives them back), so that a run that reads the result from the cache
/// hands dependents, `results()` and the report what running the proc gives.
pub(super) fn storable(outcome: Outcome) -> Outcome {
    let Outcome::Success(v) = outcome else {
        return outcome;
    };
    match cache::check_result(&v) {
        Ok(false) => Outcome::Success(v),
        Ok(true) => Outcome::Success(cache::strings_for_chars(v)),
        Err(e) => unstorable(&e),
    }
}

fn unstorable(e: &cache::JsonError) -> Outcome {
    Outcome::Failed {
        error: format!(
            "its result cannot be stored in the task DB ({e}); return maps, arrays, strings, numbers, booleans or ()"
        ),
        exit_code: None,
    }
}

/// Keeps the task DB's cache in step with an outcome: a result is saved under the proc's
/// fingerprint `hash` (a result that JSON cannot hold fails the proc), a failure forgets
/// the old result. A proc without a fingerprint is never UP_TO_DATE, nor is an attempt
/// marked [`Cache::unrepeatable`]: nothing is saved (an old row is forgotten), but it gets
/// a new stamp, so that its dependents see that it ran.
pub(super) fn save_result(
    cache: &mut Cache,
    id: ProcId,
    name: &str,
    hash: Option<&str>,
    outcome: Outcome,
) -> Outcome {
    let unrepeatable = cache.take_unrepeatable(id);
    let outputs = cache.take_outputs(id);
    let Some(hash) = hash.filter(|h| !h.is_empty() && !unrepeatable) else {
        cache.touch(id, name);
        return outcome;
    };
    let writes = outputs.is_some();
    let hash = match outputs {
        Some(outputs) => format!("{hash}{OUTPUTS_MARK}{outputs}"),
        None => hash.to_string(),
    };
    match outcome {
        Outcome::Success(v) => match cache::to_json(&v) {
            Ok(json) => {
                cache.save(id, name, json, hash, true, writes);
                Outcome::Success(v)
            }
            Err(e) => {
                cache.invalidate(id, name);
                unstorable(&e)
            }
        },
        // `skip` gives it a new stamp, as a run does: its result is now `()`, and its
        // dependents run again. `no_change` says that nothing changed: they need not,
        // unless the result they saw was not `()` (it is now).
        Outcome::Skipped { why, no_change } => {
            let unchanged = no_change && cache.row(name).is_some_and(|r| r.result == "null");
            cache.save(id, name, "null".into(), hash, !unchanged, writes);
            Outcome::Skipped {
                why,
                no_change: unchanged,
            }
        }
        Outcome::WouldRun => Outcome::WouldRun,
        failed @ (Outcome::Failed { .. } | Outcome::OutputsFailed { .. }) => {
            cache.invalidate(id, name);
            failed
        }
    }
}
