//! A reporter that shows nothing but warnings: for `prun list` and `prun graph`, which
//! evaluate a script only to look at its graph.

use super::{Reporter, Summary};
use crate::event::ProcSummary;

/// Prints warnings (to stderr) and nothing else.
#[derive(Debug, Default)]
pub(crate) struct Silent;

impl Reporter for Silent {
    fn started(&self, _: &str) {}
    fn would_run(&self, _: &str, _: &str) {}
    fn retrying(&self, _: &str, _: u32, _: &str) {}
    fn finished(&self, _: &ProcSummary) {}
    fn progress(&self, _: &str, _: &str) {}
    fn command(&self, _: Option<&str>, _: &dyn std::fmt::Display) {}
    fn message(&self, _: &str) {}
    fn warning(&self, text: &str) {
        errln!("prun: warning: {}", super::colours_only(text));
    }
    fn eprint(&self, text: &str) {
        errln!("{}", super::colours_only(text));
    }
    fn summary(&self, _: &Summary) {}
    fn set_full_log(&self, _: bool) {}
}
