//! Turning Rhai errors into messages that name the script, line and column, in words a
//! user reads: Rhai's type names (`&str | ImmutableString | String`, `i64`, `FnPtr`)
//! become "a string", "an integer", "a closure", and a function or module that does not
//! exist gets the nearest names that do ("did you mean `shell`?").
//! Used by the script host and by the graph (for errors of dependency closures).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, Weak};

use rhai::{Engine, EvalAltResult, Position};

/// Where something was written in a script: a path and, when known, a line and column.
/// Kept as parts, never as one string to split again (paths may contain colons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// Shared by every origin in the same file: a script defining 10,000 procs keeps one
    /// copy of its path, not 20,000. A `String` in the `Arc`, not a `str`: one word, which
    /// keeps every definition (that holds an origin) a word smaller.
    file: Arc<String>,
    /// 1-based; 0 when unknown.
    line: u32,
    column: u32,
}

impl Origin {
    /// The origin of a call at `pos` in `source`.
    pub(crate) fn new(source: Option<&str>, pos: Position) -> Origin {
        let number = |n: Option<usize>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
        Origin {
            file: shared(source.unwrap_or("<script>")),
            line: number(pos.line()),
            column: number(pos.position()),
        }
    }

    /// The script file.
    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    /// The line (1-based), when known.
    pub(crate) fn line(&self) -> Option<u32> {
        (self.line > 0).then_some(self.line)
    }

    /// The column (1-based), when known.
    pub(crate) fn column(&self) -> Option<u32> {
        (self.column > 0).then_some(self.column)
    }
}

/// `file` in an `Arc`, the same one as for the previous call with the same text.
fn shared(file: &str) -> Arc<String> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<Arc<String>>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(a) if **a == *file => a.clone(),
            _ => {
                let a = Arc::new(file.to_owned());
                *last = Some(a.clone());
                a
            }
        }
    })
}

/// `path:line:col` as [`location`] writes it.
impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = crate::shown::one_line(&self.file);
        match (self.line, self.column) {
            (0, _) => f.write_str(&file),
            (l, 0) => write!(f, "{file}:{l}"),
            (l, c) => write!(f, "{file}:{l}:{c}"),
        }
    }
}

#[cfg(test)]
impl From<&str> for Origin {
    fn from(file: &str) -> Origin {
        Origin::new(Some(file), Position::NONE)
    }
}

/// `path:line:col`, or just the path when the position is unknown; the path's control
/// characters (a newline too) written out, so that a position is one line.
pub(crate) fn location(source: Option<&str>, pos: Position) -> String {
    let src = crate::shown::one_line(source.unwrap_or("<script>"));
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{src}:{l}:{c}"),
        (Some(l), None) => format!("{src}:{l}"),
        _ => src.to_string(),
    }
}

/// Where a syntax error is: Rhai's position, except for a missing `;`, which Rhai reports
/// at the token after the statement, maybe lines below (past blank lines and comments)
/// where nothing is wrong; that one is put right after the statement's last token, as a
/// compiler points at the end of the line that lacks it.
pub(crate) fn syntax_error_at(
    engine: &Engine,
    src: &str,
    err: &rhai::ParseErrorType,
    at: Position,
) -> Position {
    match err {
        rhai::ParseErrorType::MissingToken(token, _) if token == ";" => {
            statement_end(engine, src, at).unwrap_or(at)
        }
        _ => at,
    }
}

/// A syntax error's message: Rhai's, and for habits of shell, JSON, JavaScript and Python
/// users, how Rhai spells what was meant: a string in single quotes (Rhai's are one
/// character), a map without its `#` (`{ shell: "x" }` is a block, so the `:` ends a
/// statement) and a function declared with `function`, `def` or `func`.
pub(crate) fn syntax_message(src: &str, err: &rhai::ParseErrorType, at: Position) -> String {
    use rhai::{LexError, ParseErrorType};
    let message = err.to_string();
    let hint = match err {
        ParseErrorType::BadInput(LexError::MalformedChar(text)) if text.chars().count() > 1 => {
            format!(
                " (a string is written in double quotes, \"{text}\", or backquotes; single quotes hold one character)"
            )
        }
        ParseErrorType::MissingToken(token, _) if token == ";" && colon_at(src, at) => {
            " (a map is written #{ key: value }, with a #)".to_string()
        }
        ParseErrorType::MissingToken(token, _) if token == ";" => match words_at(src, at) {
            Some(("function" | "def" | "func", name)) => {
                format!(" (a function is declared with fn: fn {name}(...) {{ ... }})")
            }
            _ => String::new(),
        },
        _ => String::new(),
    };
    format!("{message}{hint}")
}

/// The word right before `at` on its line and the word at `at` (`function` and `gz` in
/// `function gz(f)`, with `at` on `gz`).
fn words_at(src: &str, at: Position) -> Option<(&str, &str)> {
    let text = src.lines().nth(at.line()?.checked_sub(1)?)?;
    let split = text.char_indices().nth(at.position()?.checked_sub(1)?)?.0;
    let (before, after) = text.split_at(split);
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let previous = before.trim_end().rsplit(|c| !word(c)).next()?;
    let current = after.split(|c| !word(c)).next()?;
    Some((previous, current))
}

/// Whether the character at `at` is a lone `:` (not half of a `::` path).
fn colon_at(src: &str, at: Position) -> bool {
    let (Some(line), Some(column)) = (at.line(), at.position()) else {
        return false;
    };
    let Some(text) = src.lines().nth(line.saturating_sub(1)) else {
        return false;
    };
    let mut rest = text.chars().skip(column.saturating_sub(1));
    rest.next() == Some(':') && rest.next() != Some(':')
}

/// The position right after the last token before `at` (comments aside), when that token
/// is on an earlier line than `at` and is not a string that may span lines (`` `...` ``).
fn statement_end(engine: &Engine, src: &str, at: Position) -> Option<Position> {
    let key = |p: Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
    let (mut tokens, _) = engine.lex([&src]);
    tokens.state.include_comments = true;
    // The last token before `at`, and where the next item (token or comment) starts.
    let mut last: Option<(rhai::Token, Position)> = None;
    let mut after: Option<Position> = None;
    for (token, pos) in tokens {
        if key(pos) >= key(at) || matches!(token, rhai::Token::EOF) {
            break;
        }
        if matches!(token, rhai::Token::Comment(_)) {
            after.get_or_insert(pos);
        } else {
            last = Some((token, pos));
            after = None;
        }
    }
    let (token, pos) = last?;
    let (line, column) = key(pos);
    let text = src.lines().nth(line.checked_sub(1)?)?;
    let starts_backquoted = text.chars().nth(column.checked_sub(1)?) == Some('`');
    let spans_lines = matches!(token, rhai::Token::InterpolatedString(_))
        || (matches!(token, rhai::Token::StringConstant(_)) && starts_backquoted);
    if line >= key(at).0 || spans_lines {
        return None;
    }
    // The statement ends where a comment on its line starts, else at the line's end.
    let end = match after.map(key) {
        Some((l, c)) if l == line => c.saturating_sub(1),
        _ => text.chars().count(),
    };
    let kept: String = text.chars().take(end).collect();
    let column = kept.trim_end().chars().count() + 1;
    Some(Position::new(
        u16::try_from(line).ok()?,
        u16::try_from(column).ok()?,
    ))
}

/// A runtime error as `path:line:col: message`, followed by the call chain
/// (`in call to 'f' at path:line:col`) from the innermost frame outwards.
pub(crate) fn runtime_error(default_src: &str, err: &EvalAltResult) -> String {
    chain(default_src, err, None)
}

/// A runtime error of a closure prun called (a proc's body; a dependency, `arg_choices`,
/// `inputs` or `outputs` closure; a deferred cleanup), as [`runtime_error`]. That call
/// is at no line of the script (Rhai gives it the position of the `proc(...)` or `defer`
/// call that handed the closure over), so its frame names the closure by where it is
/// written: `in the closure at path:line:col`.
pub(crate) fn closure_error(closure: &Origin, err: &EvalAltResult) -> String {
    chain(closure.file(), err, Some(closure))
}

/// The error and its frames; the outermost frame is a call of the closure at `called`.
fn chain(default_src: &str, err: &EvalAltResult, called: Option<&Origin>) -> String {
    let mut frames = Vec::new();
    let mut src = default_src.to_string();
    let mut cur = err;
    loop {
        let (name, inner, pos, callee_src) = match cur {
            EvalAltResult::ErrorInFunctionCall(name, fsrc, inner, pos) => {
                (name, inner, pos, Some(fsrc))
            }
            // prun names a module file by its path (`lib/util.rhai`), its source.
            EvalAltResult::ErrorInModule(name, inner, pos) => (name, inner, pos, Some(name)),
            _ => break,
        };
        let outermost = std::ptr::eq(cur, err);
        if let Some(closure) = called.filter(|_| outermost && name.starts_with("anon$")) {
            frames.push(format!("in the closure at {closure}"));
        } else if pos.line().is_some() {
            let what = if name.starts_with("anon$") {
                "closure".to_string()
            } else if matches!(cur, EvalAltResult::ErrorInModule(..)) {
                format!("import of {name}")
            } else {
                format!("'{name}'")
            };
            let call = if what.starts_with("import of ") {
                "in the"
            } else {
                "in call to"
            };
            frames.push(format!("{call} {what} at {}", location(Some(&src), *pos)));
        }
        if let Some(s) = callee_src.filter(|s| !s.is_empty()) {
            src = s.clone();
        }
        cur = inner;
    }
    let pos = cur.position();
    let msg = match cur {
        EvalAltResult::ErrorModuleNotFound(name, _) => module_not_found(name, &src),
        _ => message(cur),
    };
    // Rhai moves the position of a limit (and of a termination) to each call it passes
    // through, so for a closure prun called it is that call's (the `proc(...)` that handed
    // the closure over), no line of the closure: the closure is named instead.
    let unplaced = called.is_some()
        && std::ptr::eq(cur, err)
        && (limit_of(cur).is_some() || matches!(cur, EvalAltResult::ErrorTerminated(..)));
    if let Some(closure) = called.filter(|_| unplaced) {
        frames.push(format!(
            "in the closure at {closure} (Rhai keeps no line for this error)"
        ));
    }
    let mut out = if pos.is_none() || unplaced {
        msg
    } else {
        let below = defined_below(&msg, &src, pos);
        format!("{}: {msg}{below}", location(Some(&src), pos))
    };
    for f in frames.iter().rev() {
        out.push_str("\n  ");
        out.push_str(f);
    }
    out
}

/// `import "name"` in the script at `src` found no module: the message names the file looked
/// for, with the working directory when its path is relative (a cron job's is `/` or `HOME`).
fn module_not_found(name: &str, src: &str) -> String {
    if name.trim().is_empty() {
        return format!(
            "module {name:?} not found: a module's name is not empty (a stdlib module, import \"fs\" as fs, or a file's path without .rhai)"
        );
    }
    let hint = crate::suggest::hint(name, crate::script::stdlib_names(), "\"");
    let importer = Some(src).filter(|s| *s != "<script>");
    let file = crate::script::module_file(name, importer);
    if file.is_file() {
        // The file is there: it is `lib::f()` used where no `import ... as lib` is in
        // scope (a closure sees only the imports made before it is defined).
        return format!(
            "module \"{name}\" not found: nothing is imported as {name} where this code is, though the file {} is there: import it before the code that uses it (a closure sees only the imports made before it)",
            crate::paths::shown(&file)
        );
    }
    format!(
        "module \"{name}\" not found: no file {}{hint}",
        crate::paths::shown(&file)
    )
}

/// The message of an error without Rhai's "(line x, position y)" suffix, Rhai's type
/// names put into words.
pub(crate) fn message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(v, _) if v.is_unit() => {
            return "the script threw () (an error without a message)".to_string();
        }
        EvalAltResult::ErrorRuntime(v, _) => {
            return crate::script::thrown_text(v).unwrap_or_else(|| v.to_string());
        }
        EvalAltResult::ErrorFunctionNotFound(sig, _) => return function_not_found(sig),
        // As the script's own: "syntax error", where Rhai writes "Syntax error".
        EvalAltResult::ErrorParsing(e, _) => return format!("syntax error: {e}"),
        EvalAltResult::ErrorMismatchDataType(want, got, _) => {
            return mismatch("value", want, got);
        }
        EvalAltResult::ErrorMismatchOutputType(want, got, _) => {
            return mismatch("result", want, got);
        }
        EvalAltResult::ErrorDotExpr(text, _) if !text.is_empty() => {
            return unknown_member(text).unwrap_or_else(|| quoted_types(text));
        }
        _ => {}
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

/// "the value is an integer, but a string is needed", from Rhai's type names.
fn mismatch(what: &str, want: &str, got: &str) -> String {
    match (want.is_empty(), got.is_empty()) {
        (false, false) => format!(
            "wrong type: the {what} is {}, but {} is needed",
            type_words(got),
            type_words(want)
        ),
        (false, true) => format!("wrong type: {} is needed", type_words(want)),
        _ => format!("wrong type: the {what} is {}", type_words(got)),
    }
}

/// "ctx has no member `nmae`; did you mean `name`?" for Rhai's "Unknown property 'nmae' -
/// a getter is not registered for type '...Ctx'": the members `ctx` has, with the nearest.
fn unknown_member(text: &str) -> Option<String> {
    let rest = text.strip_prefix("Unknown property '")?;
    let (name, rest) = rest.split_once('\'')?;
    let ty = rest.strip_prefix(" - a getter is not registered for type ")?;
    let ty = ty.trim_matches('\'');
    if ty == "()" {
        return Some(format!(
            "cannot read `.{name}` of () (nothing): the value before it is () (a map without \
             that key, or a function that returns nothing, gives ())"
        ));
    }
    if one_type(ty) != "ctx" {
        return None;
    }
    let members = ctx_members();
    let hint = crate::suggest::hint(name, members.iter().map(String::as_str), "`");
    Some(format!(
        "ctx has no member `{name}`{hint} (members: {})",
        members.join(", ")
    ))
}

/// The properties and methods of `ctx`, from the engine's functions that take it first.
fn ctx_members() -> Vec<String> {
    let engine = ENGINE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(Weak::upgrade);
    let mut out: Vec<String> = engine
        .map(|engine| {
            engine.collect_fn_metadata(
                None,
                |f| {
                    let first = f.metadata.params_info.first()?;
                    let ty = first.split_once(':').map_or(first.as_str(), |(_, t)| t);
                    (type_words(ty) == "ctx").then(|| {
                        let name = f.metadata.name.as_str();
                        name.strip_prefix("get$").unwrap_or(name).to_string()
                    })
                },
                true,
            )
        })
        .unwrap_or_default();
    // `to_string` and `to_debug` are how Rhai prints any value, not members of `ctx`.
    out.retain(|n| !n.contains('$') && n != "to_string" && n != "to_debug");
    out.sort();
    out.dedup();
    out
}

/// Rhai's text with each quoted type name (`'i64'`) put into words ("an integer").
fn quoted_types(text: &str) -> String {
    text.split('\'')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 if one_type(part) != part => one_type(part),
            1 => format!("'{part}'"),
            _ => part.to_string(),
        })
        .collect()
}

/// A Rhai type name in words: `&str | ImmutableString | String` is "a string", `i64`
/// "an integer", `rhai::Array` "an array", `FnPtr` "a closure". A union lists each
/// different meaning once ("a string or an integer"); an unknown type keeps its name.
pub(crate) fn type_words(rhai: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for part in rhai.split('|') {
        let w = one_type(part.trim());
        if !words.contains(&w) {
            words.push(w);
        }
    }
    words.join(" or ")
}

/// A value as a message shows what was given instead of what was expected: a number,
/// bool or short string as written (`-1`, `"x"`), anything else by its type in words
/// ("an array"). So "must be 0 or more, not -1" never reads "not an integer".
pub(crate) fn value_words(v: &rhai::Dynamic) -> String {
    if let Ok(n) = v.as_int() {
        return n.to_string();
    }
    if let Ok(b) = v.as_bool() {
        return b.to_string();
    }
    // Rhai's own text of a float: `1e300`, where Rust's runs to 301 digits.
    if v.is_float() {
        return v.to_string();
    }
    if let Some(s) = v.read_lock::<rhai::ImmutableString>()
        && s.chars().count() <= 40
    {
        return format!("{:?}", s.as_str());
    }
    type_words(v.type_name())
}

fn one_type(t: &str) -> String {
    let t = t.trim_start_matches("&mut ").trim_start_matches('&').trim();
    let base = t.split('<').next().unwrap_or(t);
    let last = base.rsplit("::").next().unwrap_or(base);
    let words = match last {
        "str" | "String" | "ImmutableString" | "string" | "SmartString" => "a string",
        "i64" | "i32" | "i16" | "i8" | "u64" | "u32" | "u16" | "u8" | "usize" | "isize" | "INT"
        | "int" => "an integer",
        "f64" | "f32" | "FLOAT" | "float" | "decimal" | "Decimal" => "a number",
        "bool" => "a bool",
        "char" => "a character",
        "Array" | "array" | "Vec" => "an array",
        "Map" | "map" | "BTreeMap" => "a map",
        "FnPtr" | "Fn" => "a closure",
        "Blob" | "blob" => "a blob",
        "()" | "unit" => "nothing (`()`)",
        "Dynamic" | "?" => "any value",
        "Instant" | "timestamp" => "a timestamp",
        "Range" | "RangeInclusive" | "range" | "range=" => "a range",
        "Ctx" => "ctx",
        "BodyOnly" => "a member of a proc body's ctx only",
        "NoFailures" => "NO_FAILURES",
        "WhenScheduled" => "when_scheduled(...)",
        "Skip" | "SkipSignal" => "skip(...)",
        _ => return t.to_string(),
    };
    words.to_string()
}

/// How many ways of calling a function a message lists.
const MAX_FORMS: usize = 6;

/// The methods of a proc body's `ctx`. A closure evaluated for the scheduler (dependency,
/// `arg_choices`, `inputs`/`outputs`) gets a map as its ctx instead, on which they do not
/// exist: calling one there is told as the rule it breaks.
const CTX_METHODS: &[&str] = &["run", "start", "create", "wait", "log", "progress"];

/// Rhai's `name (type, type)` of a call that matched no function, as "function not
/// found: name(a string, an integer)", with the nearest function names, or the ways the
/// function can be called when only its arguments were wrong.
fn function_not_found(sig: &str) -> String {
    let (name, args) = match sig.split_once(" (") {
        Some((n, rest)) => (n.trim(), rest.strip_suffix(')').unwrap_or(rest)),
        None => (sig.trim(), ""),
    };
    let args: Vec<String> = split_types(args).iter().map(|a| type_words(a)).collect();
    if name.starts_with("anon$") {
        let engine = ENGINE
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        if let Some((_, module)) =
            engine.and_then(|engine| crate::script::closure_module(&engine, name))
        {
            return format!(
                "the closure was made in the module {module}, and the script cannot call it directly: give it to proc, defer..., or call it from a function of the module"
            );
        }
        let given = if args.is_empty() {
            "no arguments".to_string()
        } else {
            args.join(", ")
        };
        return format!("the closure cannot be called with {given}: it takes other arguments");
    }
    if !rhai::is_valid_function_name(name) && !name.contains("::") {
        return format!("operator `{name}` does not apply to {}", args.join(" and "));
    }
    if let Some(kind) = crate::exec::evaluating()
        && CTX_METHODS.contains(&name)
        && args.first().is_some_and(|a| a == "a map")
    {
        return format!(
            "{kind} cannot call ctx.{name}(): its ctx is a map of name, args and params, and it must only compute its value (it may call state(), results(), exec(), shell(), pipe() and sleep())"
        );
    }
    let call = format!("{name}({})", args.join(", "));
    if let Some((alias, bare)) = name.rsplit_once("::")
        && let Some(functions) = module_functions(alias)
    {
        if let Some(forms) = functions.get(bare) {
            let shown: Vec<String> = forms.iter().map(|f| format!("{alias}::{f}")).collect();
            return format!(
                "function {call} does not exist: `{name}` is called as {}",
                shown.join(" or ")
            );
        }
        let qualified: Vec<String> = functions.keys().map(|f| format!("{alias}::{f}")).collect();
        let hint = crate::suggest::hint(name, qualified.iter().map(String::as_str), "`");
        return format!("function not found: {call}{hint}");
    }
    let known = callables();
    let bare = name.rsplit("::").next().unwrap_or(name);
    if let Some(forms) = known.get(bare).filter(|_| !name.contains("::")) {
        if forms.is_empty() {
            return format!(
                "function {call} does not exist: the script's function `{bare}` takes other arguments"
            );
        }
        if let Some(counts) = any_values(bare, forms) {
            return format!("function {call} does not exist: `{bare}` takes {counts}");
        }
        let mut shown: Vec<&str> = forms.iter().take(MAX_FORMS).map(String::as_str).collect();
        if forms.len() > MAX_FORMS {
            shown.push("...");
        }
        return format!(
            "function {call} does not exist: `{bare}` is called as {}{}",
            shown.join(" or "),
            string_body(bare, &args)
        );
    }
    let hint = crate::suggest::hint(bare, known.keys().map(String::as_str), "`");
    format!("function not found: {call}{hint}")
}

/// For `proc` or `proto` given a string where the body goes (`proc("a", "make")`), as
/// `just` and `make` take a recipe: where a command line goes.
fn string_body(name: &str, args: &[String]) -> &'static str {
    let body_is_text = args.len() >= 2 && args.last().is_some_and(|a| a == "a string");
    if matches!(name, "proc" | "proto") && body_is_text {
        " (a command line goes in the options: #{ shell: \"...\" }, or #{ cmd: [...] } for an argv)"
    } else {
        ""
    }
}

/// When the function `name` has several forms, each taking only values of any type
/// (`require`): how many it takes, such as `1 to 8 values`.
fn any_values(name: &str, forms: &BTreeSet<String>) -> Option<String> {
    if forms.len() < 2 {
        return None;
    }
    let counts: Vec<usize> = forms
        .iter()
        .map(|f| {
            let args = f.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
            let args: Vec<&str> = args.split(", ").filter(|a| !a.is_empty()).collect();
            args.iter().all(|a| *a == "any value").then_some(args.len())
        })
        .collect::<Option<_>>()?;
    let (min, max) = (counts.iter().min()?, counts.iter().max()?);
    Some(format!("{min} to {max} values"))
}

/// The types of a Rhai signature's arguments, split at the commas outside `<...>`.
fn split_types(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in args.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = args[start..].trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// The engine whose functions "did you mean" offers, and the functions its script
/// defined: those of the run that started last. Read only when an error names a missing
/// function: listing an engine's functions takes a while, and most runs never need it.
/// While a program embedding prun has runs at once, a hint may draw from another run's
/// engine; only the hint, never the error, and nothing is kept of finished runs.
static ENGINE: RwLock<Option<Weak<Engine>>> = RwLock::new(None);
static SCRIPT_FUNCTIONS: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// The modules the script imported: alias → (the path given to `import`, the importing
/// script), as [`know_imports`] found them.
static IMPORTS: RwLock<BTreeMap<String, (String, Option<String>)>> = RwLock::new(BTreeMap::new());

/// Remembers the modules `ast` imports with a constant path (`import "rclone" as r;`),
/// so that a function missing from one (`r::newst`) gets the nearest of its functions.
pub(crate) fn know_imports(ast: &rhai::AST) {
    let mut found = BTreeMap::new();
    ast.walk(&mut |path: &[rhai::ASTNode]| {
        if let Some(rhai::ASTNode::Stmt(rhai::Stmt::Import(import, _))) = path.last()
            && let (rhai::Expr::StringConstant(module, _), alias) = (&import.0, &import.1)
            && !alias.name.is_empty()
        {
            let source = ast.source().map(str::to_string);
            found.insert(alias.name.to_string(), (module.to_string(), source));
        }
        true
    });
    *IMPORTS.write().unwrap_or_else(|e| e.into_inner()) = found;
}

/// The procs the script defines with a constant name (`proc("build", ...)`), each with
/// where: the script, its line and its column, as [`know_definitions`] found them.
static DEFINITIONS: RwLock<Vec<(String, Option<String>, Position)>> = RwLock::new(Vec::new());

/// Remembers where `ast` defines procs with a constant name, so that a `run` that names
/// one defined below it can say so (a script runs from top to bottom, a Makefile does not).
pub(crate) fn know_definitions(ast: &rhai::AST) {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[rhai::ASTNode]| {
        if let Some(
            rhai::ASTNode::Expr(rhai::Expr::FnCall(call, pos))
            | rhai::ASTNode::Stmt(rhai::Stmt::FnCall(call, pos)),
        ) = path.last()
            && call.namespace.is_empty()
            && call.name == "proc"
            && let Some(rhai::Expr::StringConstant(name, _)) = call.args.first()
        {
            found.push((name.to_string(), ast.source().map(str::to_string), *pos));
        }
        true
    });
    *DEFINITIONS.write().unwrap_or_else(|e| e.into_inner()) = found;
}

/// `; proc "x" is defined below, at path:line:col: ...` when `msg` says that nothing
/// matches a name the script at `src` defines after `pos`; else nothing.
fn defined_below(msg: &str, src: &str, pos: Position) -> String {
    const NO_MATCH: &str = "no proc or proto matches \"";
    let Some(name) = msg
        .strip_prefix(NO_MATCH)
        .and_then(|rest| rest.split('"').next())
    else {
        return String::new();
    };
    let at = |p: Position| (p.line().unwrap_or(0), p.position().unwrap_or(0));
    let definitions = DEFINITIONS.read().unwrap_or_else(|e| e.into_inner());
    definitions
        .iter()
        .find(|(n, s, p)| n == name && s.as_deref() == Some(src) && at(*p) > at(pos))
        .map(|(_, _, p)| {
            format!(
                "; proc \"{name}\" is defined below, at {}: a script runs from top to bottom: \
                 define it before the run() that names it",
                location(Some(src), *p)
            )
        })
        .unwrap_or_default()
}

/// The public functions of the module imported as `alias`, by name, with their
/// signatures (`newest(src, dir, opts)`). The module is asked of the engine's resolver,
/// which has it already (it was imported), so nothing in it runs again.
fn module_functions(alias: &str) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let (module, source) = IMPORTS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(alias)?
        .clone();
    let engine = ENGINE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(Weak::upgrade)?;
    let module = engine
        .module_resolver()
        .resolve(&engine, source.as_deref(), &module, Position::NONE)
        .ok()?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sig in module.gen_fn_signatures_with_mapper(|t| t.into()) {
        let name = sig.split('(').next().unwrap_or(&sig).to_string();
        out.entry(name).or_default().insert(sig);
    }
    Some(out)
}

/// Makes `engine`'s functions the ones "did you mean" offers.
pub(crate) fn know_engine(engine: &Weak<Engine>) {
    *ENGINE.write().unwrap_or_else(|e| e.into_inner()) = Some(engine.clone());
}

/// Makes the functions a script defines (`fn name(...)`) the script functions "did you
/// mean" offers.
pub(crate) fn know_script_functions<'a>(names: impl IntoIterator<Item = &'a str>) {
    let mut known = SCRIPT_FUNCTIONS.write().unwrap_or_else(|e| e.into_inner());
    *known = names.into_iter().map(str::to_string).collect();
}

/// Rhai's keywords that are called like functions (`print(x)`, `type_of(x)`, `Fn("f")`):
/// not all of them are registered functions, yet every script may call them.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// The names of every function a script may call without a module's prefix: the
/// engine's, the script's own and Rhai's keywords; `None` while no engine is known (a
/// name cannot be said to be missing then).
pub(crate) fn callable_names() -> Option<BTreeSet<String>> {
    let known = ENGINE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|e| e.strong_count() > 0);
    known.then(|| {
        let mut names: BTreeSet<String> = callables().into_keys().collect();
        names.extend(KEYWORD_FUNCTIONS.iter().map(|k| k.to_string()));
        names
    })
}

/// Every callable function by name, with the ways it can be called (`shell(a string)`).
fn callables() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let engine = ENGINE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(Weak::upgrade);
    if let Some(engine) = engine {
        let forms = engine.collect_fn_metadata(
            None,
            |f| {
                let name = f.metadata.name.as_str();
                if !rhai::is_valid_function_name(name) || name.contains('$') {
                    return None;
                }
                // A function registered raw (`require`) has no parameter information:
                // its parameters take any value.
                let params: Vec<String> = if f.metadata.params_info.is_empty() {
                    vec!["any value".to_string(); f.metadata.num_params]
                } else {
                    f.metadata
                        .params_info
                        .iter()
                        .map(|p| type_words(p.split_once(':').map_or(p.as_str(), |(_, t)| t)))
                        .collect()
                };
                Some((name.to_string(), format!("{name}({})", params.join(", "))))
            },
            true,
        );
        for (name, form) in forms {
            out.entry(name).or_default().insert(form);
        }
    }
    for name in SCRIPT_FUNCTIONS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        out.entry(name.clone()).or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhai_types_read_as_words() {
        assert_eq!(type_words("&str | ImmutableString | String"), "a string");
        assert_eq!(type_words("i64"), "an integer");
        assert_eq!(type_words("rhai::Array"), "an array");
        assert_eq!(type_words("rhai::Map"), "a map");
        assert_eq!(type_words("FnPtr"), "a closure");
        assert_eq!(type_words("&mut prun::script::ctx::Ctx"), "ctx");
        assert_eq!(type_words("i64 | string"), "an integer or a string");
        assert_eq!(
            quoted_types("No writable property 'foo' - a setter is not registered for type 'i64'"),
            "No writable property 'foo' - a setter is not registered for type an integer"
        );
    }

    #[test]
    fn a_value_given_is_shown_as_written_a_huge_float_with_its_exponent() {
        assert_eq!(value_words(&rhai::Dynamic::from(1e300_f64)), "1e300");
        assert_eq!(value_words(&rhai::Dynamic::from(0.5_f64)), "0.5");
        assert_eq!(value_words(&rhai::Dynamic::from(-1_i64)), "-1");
        assert_eq!(value_words(&rhai::Dynamic::from("x")), "\"x\"");
    }

    #[test]
    fn signatures_split_at_top_level_commas() {
        assert_eq!(
            split_types("&str | ImmutableString | String, Option<i64, u8>, i64"),
            ["&str | ImmutableString | String", "Option<i64, u8>", "i64"]
        );
        assert!(split_types("").is_empty());
    }
}
