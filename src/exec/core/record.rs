//! What the task DB keeps of a finished proc for `prun report`'s picture: each attempt
//! (when, on which lane, how it failed), the time it waited ready, and its dependencies.

use std::time::SystemTime;

use super::{Core, ProcId};
use crate::store::ProcRecord;

/// A task DB write of a proc that ended while the DB was still opening (a proc that needs
/// no judging starts without waiting for it): kept in order, made once it is open.
#[derive(Debug)]
pub(super) enum Unsaved {
    /// Its stamp moves on (see [`crate::exec::Cache::touch`]).
    Touch(ProcId),
    /// Its history row.
    Record(Box<ProcRecord>),
}

/// One attempt of a proc: started on a lane, ended (with an error when it failed).
#[derive(Debug)]
pub(super) struct Attempt {
    start: SystemTime,
    end: Option<SystemTime>,
    lane: usize,
    error: Option<String>,
}

impl Attempt {
    /// An attempt starting now on `lane`.
    pub(super) fn new(lane: usize) -> Attempt {
        Attempt {
            start: SystemTime::now(),
            end: None,
            lane,
            error: None,
        }
    }

    /// Whether it ended (and gave its lane back).
    pub(super) fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// Why it failed, when it did.
    pub(super) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// An attempt as the history's `segments` keep it (a JSON object, its keys in this
/// order). Written straight from here: a JSON value built first cost more than the rest
/// of a short proc's end.
#[derive(serde::Serialize)]
struct Segment<'a> {
    end: Option<f64>,
    error: Option<&'a str>,
    place: String,
    start: f64,
}

/// Seconds since the Unix epoch.
fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Core {
    /// Ends `p`'s current attempt now (`error`: how it failed) and frees its lane.
    pub(super) fn end_attempt(&mut self, p: ProcId, error: Option<String>) {
        if let Some(a) = self.runs[p]
            .live
            .as_mut()
            .and_then(|l| l.attempt_log.last_mut())
            && a.end.is_none()
        {
            a.end = Some(SystemTime::now());
            a.error = error;
            self.lanes.give(a.lane);
        }
    }

    /// The task DB's history row of a proc that reached its final state.
    pub(super) fn history_record(&self, p: ProcId) -> ProcRecord {
        let r = &self.runs[p];
        let node = self.graph.proc(p);
        // A lane, or for the last attempt the host or batch job an executor ran it on.
        let attempts = r.attempt_log();
        let last = attempts.len().saturating_sub(1);
        let place_of = |i: usize, a: &Attempt| match r.place() {
            Some(remote) if i == last => remote.clone(),
            _ => a.lane.to_string(),
        };
        let segments: Vec<Segment> = attempts
            .iter()
            .enumerate()
            .map(|(i, a)| Segment {
                end: a.end.map(epoch_secs),
                error: a.error.as_deref(),
                place: place_of(i, a),
                start: epoch_secs(a.start),
            })
            .collect();
        let deps: Vec<&str> = r
            .dep_ids
            .iter()
            .map(|&d| &*self.graph.proc(d).name)
            .collect();
        let ran = r.attempts > 0;
        ProcRecord {
            name: node.name.to_string(),
            state: r.state.to_string(),
            started: r
                .started_at
                .get()
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
            duration: r.duration.get().map(|d| d.as_secs_f64()),
            exit_code: r.exit_code,
            log: r.log.as_ref().map(|l| l.display().to_string()),
            error: r.error().cloned(),
            ended: Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
            attempts: Some(r.attempts),
            segments: ran.then(|| serde_json::to_string(&segments).unwrap_or_else(|_| "[]".into())),
            waited: ran.then(|| r.live.as_ref().map_or(0.0, |l| l.waited.as_secs_f64())),
            place: attempts.last().map(|a| place_of(last, a)),
            deps: Some(serde_json::to_string(&deps).unwrap_or_else(|_| "[]".into())),
            proto: node
                .proto()
                .map(|id| self.graph.proto(id).template.text().to_string()),
            cycle: Some(r.cycle),
            wave: Some(node.def.extras().wave),
        }
    }

    /// Makes the writes kept while the task DB was opening, now that it is open (or drops
    /// them when it cannot be used).
    pub(super) fn save_unsaved(&mut self) {
        let unsaved = std::mem::take(&mut self.unsaved);
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        for write in unsaved {
            match write {
                Unsaved::Touch(p) => cache.touch(p, &self.graph.proc(p).name),
                Unsaved::Record(rec) => cache.record(*rec),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_the_json_objects_they_always_were() {
        let segments = [
            Segment {
                end: Some(1_764_504_000.125),
                error: Some("exited with code 3: \"x\"\n"),
                place: "host-1".into(),
                start: 1_764_503_999.5,
            },
            Segment {
                end: None,
                error: None,
                place: "0".into(),
                start: 1_764_504_001.0,
            },
        ];
        let before = serde_json::json!([
            {
                "start": 1_764_503_999.5,
                "end": Some(1_764_504_000.125),
                "place": "host-1",
                "error": Some("exited with code 3: \"x\"\n"),
            },
            { "start": 1_764_504_001.0, "end": None::<f64>, "place": "0", "error": None::<String> },
        ]);
        assert_eq!(
            serde_json::to_string(&segments).unwrap(),
            before.to_string()
        );
    }
}
