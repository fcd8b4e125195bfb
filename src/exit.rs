//! prun's exit statuses: what every way a run or a subcommand ends maps to.

/// prun's exit statuses (API.md section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Every scheduled proc succeeded, was skipped or was up to date.
    Ok = 0,
    /// A proc failed.
    ProcFailed = 1,
    /// The script itself failed.
    Script = 2,
    /// The command line was wrong.
    Usage = 64,
    /// `--lock`: another run of the script holds the lock.
    Locked = 75,
    /// Interrupted by Ctrl-C, SIGTERM, SIGHUP or SIGQUIT.
    Interrupted = 130,
}
