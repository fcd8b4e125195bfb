//! How the library's code is laid out (issue 10): its top-level modules depend on each
//! other without cycles (the core was split so that `cli`, `run`, `exec`, `ui` and the
//! others form layers), and its errors are types, never a `String`. A module's
//! dependencies are the `crate::NAME` paths in its code (doc comments and unit tests left
//! out); a cycle fails the test, naming its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each source file of `src/`, as its path under `src/` and its code without its unit
/// tests and comment lines.
fn sources() -> Vec<(std::path::PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src").to_path_buf();
            let text = std::fs::read_to_string(&path).expect("read a module");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            files.push((rel, code.join("\n")));
        }
    }
    files
}

/// The top-level modules each top-level module of `src/` names in its code.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, code) in sources() {
        let first = rel.components().next().expect("a component");
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let mine = deps.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                mine.insert(name);
            }
        }
    }
    deps
}

/// A cycle through `from`, as the modules on it, if there is one.
fn cycle_from(
    deps: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|m| m == from) {
        return Some(path[i..].to_vec());
    }
    path.push(from.to_string());
    for next in deps.get(from).into_iter().flatten() {
        if let Some(c) = cycle_from(deps, next, path) {
            return Some(c);
        }
    }
    path.pop();
    None
}

#[test]
fn the_top_level_modules_have_no_dependency_cycle() {
    let deps = dependencies();
    assert!(
        deps.contains_key("exec") && deps.contains_key("cli"),
        "{deps:?}"
    );
    for module in deps.keys() {
        if let Some(cycle) = cycle_from(&deps, module, &mut Vec::new()) {
            panic!("a dependency cycle: {} -> {}", cycle.join(" -> "), cycle[0]);
        }
    }
}

#[test]
fn no_library_function_returns_a_string_as_its_error() {
    let stringly: Vec<String> = sources()
        .iter()
        .flat_map(|(rel, code)| {
            code.lines()
                .filter(|l| l.contains("Result<") && l.contains(", String>"))
                .map(move |l| format!("{}: {}", rel.display(), l.trim()))
        })
        .collect();
    assert!(stringly.is_empty(), "{stringly:#?}");
}
