//! [`Tee`]: the reporter of a run that also has an embedder's event callback.

use std::sync::Arc;

use super::{Reporter, Summary};
use crate::event::{Event, EventFn, ProcSummary};

/// A reporter that hands every call to prun's own display (none for a silent run) and,
/// as an [`Event`], to the embedder's callback.
pub(crate) struct Tee {
    inner: Option<Arc<dyn Reporter>>,
    callback: Option<EventFn>,
}

impl Tee {
    /// `inner`, with events for `callback`.
    pub(crate) fn new(inner: Option<Arc<dyn Reporter>>, callback: Option<EventFn>) -> Tee {
        Tee { inner, callback }
    }

    fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(cb) = &self.callback {
            cb(&event());
        }
    }
}

impl Reporter for Tee {
    fn started(&self, name: &str) {
        if let Some(r) = &self.inner {
            r.started(name);
        }
        self.emit(|| Event::Started { name: name.into() });
    }
    fn would_run(&self, name: &str, what: &str) {
        if let Some(r) = &self.inner {
            r.would_run(name, what);
        }
    }
    fn retrying(&self, name: &str, attempt: u32, error: &str) {
        if let Some(r) = &self.inner {
            r.retrying(name, attempt, error);
        }
        self.emit(|| Event::Retrying {
            name: name.into(),
            attempt,
            error: error.into(),
        });
    }
    fn finished(&self, f: &ProcSummary) {
        if let Some(r) = &self.inner {
            r.finished(f);
        }
        self.emit(|| Event::Finished {
            name: f.name.to_string(),
            state: f.state,
            duration: f.duration,
            exit_code: f.exit_code,
            error: f.error.clone(),
        });
    }
    fn progress(&self, proc: &str, text: &str) {
        if let Some(r) = &self.inner {
            r.progress(proc, text);
        }
        self.emit(|| Event::Progress {
            name: proc.into(),
            text: text.into(),
        });
    }
    fn command(&self, proc: Option<&str>, line: &dyn std::fmt::Display) {
        if let Some(r) = &self.inner {
            r.command(proc, line);
        }
        self.emit(|| Event::Command {
            proc: proc.map(Into::into),
            line: line.to_string(),
        });
    }
    fn message(&self, text: &str) {
        if let Some(r) = &self.inner {
            r.message(text);
        }
        self.emit(|| Event::Log { text: text.into() });
    }
    fn warning(&self, text: &str) {
        if let Some(r) = &self.inner {
            r.warning(text);
        }
        self.emit(|| Event::Warning { text: text.into() });
    }
    fn eprint(&self, text: &str) {
        if let Some(r) = &self.inner {
            r.eprint(text);
        }
        self.emit(|| Event::Diagnostic { text: text.into() });
    }
    fn summary(&self, s: &Summary) {
        if let Some(r) = &self.inner {
            r.summary(s);
        }
    }
    fn set_full_log(&self, on: bool) {
        if let Some(r) = &self.inner {
            r.set_full_log(on);
        }
    }
    fn set_dynamic(&self, on: bool) {
        if let Some(r) = &self.inner {
            r.set_dynamic(on);
        }
    }
    fn output(&self, proc: &str, lines: &str) {
        if let Some(r) = &self.inner {
            r.output(proc, lines);
        }
        self.emit(|| Event::Output {
            name: proc.into(),
            lines: lines.into(),
        });
    }
    fn group(&self, proc: &str, log: &std::path::Path) {
        if let Some(r) = &self.inner {
            r.group(proc, log);
        }
    }
    fn end_batch(&self) {
        if let Some(r) = &self.inner {
            r.end_batch();
        }
    }
    fn pause(&self) {
        if let Some(r) = &self.inner {
            r.pause();
        }
    }
    fn resume(&self) {
        if let Some(r) = &self.inner {
            r.resume();
        }
    }
    fn cycle_started(&self, procs: usize) {
        if let Some(r) = &self.inner {
            r.cycle_started(procs);
        }
    }
    fn cycle_grew(&self, more: usize) {
        if let Some(r) = &self.inner {
            r.cycle_grew(more);
        }
    }
    fn cycle_ended(&self, line: &str, failed: bool) {
        if let Some(r) = &self.inner {
            r.cycle_ended(line, failed);
        }
        self.emit(|| Event::Log { text: line.into() });
    }
}
