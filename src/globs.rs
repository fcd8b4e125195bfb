//! Glob patterns over the file system, with the shell's rules: `*`, `?`, `[...]` and `**`
//! do not match a leading `.` (write `.*` for hidden files), and `*` stays within one
//! directory while `**` spans any number. The `glob()` helper and the globs in `inputs`
//! and `outputs` both use it, so a pattern means the same in both places.
//!
//! The `glob` crate's own option for hidden files also drops what `.*` should match
//! (rust-lang/glob#189), so its walk is filtered with a matcher that has the shell's
//! options instead.

use std::path::PathBuf;

/// The paths matching `pattern`, sorted.
pub(crate) fn paths(pattern: &str) -> Result<Vec<PathBuf>, glob::PatternError> {
    let shell_like = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let matcher = glob::Pattern::new(pattern)?;
    let mut out: Vec<PathBuf> = glob::glob(pattern)?
        .filter_map(Result::ok)
        .filter(|p| matcher.matches_path_with(p, shell_like))
        .collect();
    out.sort();
    Ok(out)
}
