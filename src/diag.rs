//! Turning Rhai errors into messages that name the script, line and column.
//! Used by the script host and by the graph (for errors of dependency closures).

use std::sync::Arc;

use rhai::{EvalAltResult, Position};

/// Where something was written in a script: a path and, when known, a line and column.
/// Kept as parts, never as one string to split again (paths may contain colons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Shared by every origin in the same file: a script defining 10,000 procs keeps one
    /// copy of its path, not 20,000.
    file: Arc<str>,
    /// 1-based; 0 when unknown.
    line: u32,
    column: u32,
}

impl Origin {
    /// The origin of a call at `pos` in `source`.
    pub fn new(source: Option<&str>, pos: Position) -> Origin {
        let number = |n: Option<usize>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
        Origin {
            file: shared(source.unwrap_or("<script>")),
            line: number(pos.line()),
            column: number(pos.position()),
        }
    }

    /// The script file.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line (1-based), when known.
    pub fn line(&self) -> Option<u32> {
        (self.line > 0).then_some(self.line)
    }

    /// The column (1-based), when known.
    pub fn column(&self) -> Option<u32> {
        (self.column > 0).then_some(self.column)
    }
}

/// `file` as an `Arc<str>`, the same one as for the previous call with the same text.
fn shared(file: &str) -> Arc<str> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(a) if **a == *file => a.clone(),
            _ => {
                let a: Arc<str> = Arc::from(file);
                *last = Some(a.clone());
                a
            }
        }
    })
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (0, _) => f.write_str(&self.file),
            (l, 0) => write!(f, "{}:{l}", self.file),
            (l, c) => write!(f, "{}:{l}:{c}", self.file),
        }
    }
}

#[cfg(test)]
impl From<&str> for Origin {
    fn from(file: &str) -> Origin {
        Origin::new(Some(file), Position::NONE)
    }
}

/// `path:line:col`, or just the path when the position is unknown.
pub fn location(source: Option<&str>, pos: Position) -> String {
    let src = source.unwrap_or("<script>");
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{src}:{l}:{c}"),
        (Some(l), None) => format!("{src}:{l}"),
        _ => src.to_string(),
    }
}

/// A runtime error as `path:line:col: message`, followed by the call chain
/// (`in call to 'f' at path:line:col`) from the innermost frame outwards.
pub fn runtime_error(default_src: &str, err: &EvalAltResult) -> String {
    let mut frames = Vec::new();
    let mut src = default_src.to_string();
    let mut cur = err;
    loop {
        let (name, inner, pos, callee_src) = match cur {
            EvalAltResult::ErrorInFunctionCall(name, fsrc, inner, pos) => {
                (name, inner, pos, Some(fsrc))
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => (name, inner, pos, None),
            _ => break,
        };
        if pos.line().is_some() {
            let what = if name.starts_with("anon$") {
                "closure".to_string()
            } else {
                format!("'{name}'")
            };
            frames.push(format!(
                "in call to {what} at {}",
                location(Some(&src), *pos)
            ));
        }
        if let Some(s) = callee_src.filter(|s| !s.is_empty()) {
            src = s.clone();
        }
        cur = inner;
    }
    let pos = cur.position();
    let msg = message(cur);
    let mut out = if pos.is_none() {
        msg
    } else {
        format!("{}: {msg}", location(Some(&src), pos))
    };
    for f in frames.iter().rev() {
        out.push_str("\n  ");
        out.push_str(f);
    }
    out
}

/// The message of an error without Rhai's "(line x, position y)" suffix.
pub fn message(err: &EvalAltResult) -> String {
    if let EvalAltResult::ErrorRuntime(v, _) = err {
        return v.to_string();
    }
    // Rhai shows only "Script terminated", whatever the reason.
    if let EvalAltResult::ErrorTerminated(v, _) = err
        && v.clone()
            .into_string()
            .is_ok_and(|s| s == crate::exec::STACK_FULL)
    {
        return crate::exec::STACK_FULL.to_string();
    }
    let text = err.to_string();
    let text = match text.rfind(" (line ") {
        Some(i) if !err.position().is_none() && text.ends_with(')') => text[..i].to_string(),
        _ => text,
    };
    match limit_of(err) {
        Some(limit) => format!("{text} (over the limit {limit})"),
        None => text,
    }
}

/// The engine limit an error broke (see `prun::RuntimeBuilder::max_operations` and the
/// like), by the name the builder gives it.
fn limit_of(err: &EvalAltResult) -> Option<&'static str> {
    match err {
        EvalAltResult::ErrorTooManyOperations(_) => Some("max_operations"),
        EvalAltResult::ErrorStackOverflow(_) => Some("max_call_levels"),
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("string") => {
            Some("max_string_size")
        }
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("array") => {
            Some("max_array_size")
        }
        EvalAltResult::ErrorDataTooLarge(what, _) if what.contains("map") => Some("max_map_size"),
        _ => None,
    }
}
