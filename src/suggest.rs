//! "Did you mean …": the valid names nearest to a wrong one, for every message that
//! reports a name prun does not know (a target, a proc, a dependency, an option key, a
//! subcommand, a module, a function).
//!
//! Nearness is the Damerau–Levenshtein distance (a swap of two neighbours counts as one
//! edit, so `dpes` is one edit from `deps`), compared case-insensitively. A candidate is
//! offered when it is at most a third of the wrong name's length away (at least one
//! edit, and fewer edits than the wrong name has characters), or when one name contains
//! the other (`build` for `build::prod`); the nearest
//! few are offered, nearest first.

/// How many names a hint offers at most.
const MAX: usize = 3;

/// The candidates nearest to `wrong`, nearest first (at most three, none when nothing is
/// near). `wrong` itself is never offered.
pub(crate) fn nearest<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let w = wrong.to_lowercase();
    let limit = (w.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != wrong && !c.is_empty())
        .filter_map(|c| {
            let lc = c.to_lowercase();
            let d = strsim::damerau_levenshtein(&w, &lc);
            let contains = w.len() >= 3 && lc.len() >= 3 && (lc.contains(&w) || w.contains(&lc));
            // A name is never "near" one it shares no character with (`a` and `b`).
            ((d <= limit && d < w.chars().count()) || contains).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(MAX).map(|(_, c)| c).collect()
}

/// `; did you mean "a" or "b"?` for the nearest candidates, quoted with `quote` on both
/// sides (`"` for names, `` ` `` for code), or an empty string.
pub(crate) fn hint<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    quote: &str,
) -> String {
    question(&nearest(wrong, candidates), quote)
}

/// `; did you mean "a" or "b"?` for `near`, or an empty string when it is empty.
fn question(near: &[impl std::fmt::Display], quote: &str) -> String {
    if near.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("{quote}{n}{quote}")).collect();
    let list = match quoted.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => String::new(),
    };
    format!("; did you mean {list}?")
}

/// `; did you mean `build.rhai`?` for a script path that names no file (`buld.rhai`, or
/// `build` as `just build` is typed): the nearest `.rhai` files of its directory, written
/// as the path was. An empty string when none is near or the directory cannot be read.
pub(crate) fn script_hint(path: &std::path::Path) -> String {
    question(&nearest_scripts(path, |_| true), "`")
}

/// `; did you mean `build.rhai`?` for a script that has no run recorded (`prun history
/// buld.rhai`): the nearest `.rhai` files of its directory that have runs recorded in
/// their own task DB (see [`crate::paths::script_state_dir`]), written as the path was.
/// An empty string when none is near.
pub(crate) fn recorded_script_hint(path: &std::path::Path) -> String {
    let recorded = |candidate: &std::path::Path| {
        let db = crate::paths::script_state_dir(candidate).join("tasks.db");
        !crate::store::missing(&db)
    };
    question(&nearest_scripts(path, recorded), "`")
}

/// The `.rhai` files of `path`'s directory nearest to its name, those `keep` keeps (the
/// file itself, when it is there, first), written as the path was.
fn nearest_scripts(path: &std::path::Path, keep: impl Fn(&std::path::Path) -> bool) -> Vec<String> {
    let Some(wrong) = path.file_name().map(|n| n.to_string_lossy()) else {
        return Vec::new();
    };
    let dir = path.parent().unwrap_or(std::path::Path::new(""));
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    // Names compared without `.rhai`, which every candidate shares.
    let stems: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rhai").map(str::to_string))
        .filter(|n| keep(&dir.join(format!("{n}.rhai"))))
        .collect();
    let wrong = wrong.strip_suffix(".rhai").unwrap_or(&wrong);
    let near = match stems.iter().find(|s| *s == wrong) {
        Some(same) => vec![same.as_str()],
        None => nearest(wrong, stems.iter().map(String::as_str)),
    };
    near.into_iter()
        .map(|n| dir.join(format!("{n}.rhai")).display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_name() {
        assert_eq!(nearest("dpes", ["deps", "rdeps", "now"]), ["deps"]);
        assert_eq!(nearest("shel", ["shell", "exec", "pipe"]), ["shell"]);
        assert_eq!(nearest("chek", ["check", "list", "graph"]), ["check"]);
    }

    #[test]
    fn nothing_near_gives_nothing() {
        assert!(nearest("xyzzy", ["deps", "wave"]).is_empty());
        assert!(nearest("a", ["b"]).is_empty());
        assert_eq!(nearest("aa", ["a"]), ["a"]);
        assert_eq!(hint("xyzzy", ["deps"], "`"), "");
    }

    #[test]
    fn a_name_inside_another_is_near() {
        assert_eq!(nearest("build", ["build::prod", "test"]), ["build::prod"]);
    }

    #[test]
    fn hints_read_as_a_question() {
        assert_eq!(hint("dpes", ["deps"], "`"), "; did you mean `deps`?");
        assert_eq!(
            hint("ab", ["aa", "ac", "zz"], "\""),
            "; did you mean \"aa\" or \"ac\"?"
        );
    }
}
