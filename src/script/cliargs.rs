//! `args(#{...})`: a script's own command line (API.md section 6).
//!
//! A declaration maps option names to their specs (`short`, `help`, `"default"`,
//! `required`, `flag`, `int`, `min`, `max`, `duration`, `list`, `env`, `positional`,
//! `secret`, `choices`) plus an `about` line. A value of the wrong type (not an integer,
//! out of `min`..`max`, not a duration, not a choice) is a usage error naming the option
//! and the value, found before the script runs.
//! The values of secret options (`secret: true`, or an `env` fallback whose name contains
//! PASSWORD, TOKEN or SECRET, in any case) are hidden wherever prun writes arguments or
//! command lines (see [`crate::redact`]). The words after the script path are read as
//! API.md section 1 says: an option the script declares belongs to the script (it may
//! declare `-q` or `-v` although prun has its own); other options are prun's; after `--`
//! every word is the script's; positional words are targets unless the script declares
//! positional arguments.

use rhai::{Array, Dynamic, Map};

/// One declared option.
#[derive(Debug, Clone)]
struct Opt {
    key: String,
    long: String,
    short: Option<char>,
    help: String,
    default: Option<Dynamic>,
    required: bool,
    flag: bool,
    int: bool,
    /// The least and the greatest integer an `int` option takes.
    min: Option<i64>,
    max: Option<i64>,
    /// The value must read as a duration (`30s`, `2d`); it stays text.
    duration: bool,
    list: bool,
    env: Option<String>,
    positional: bool,
    secret: bool,
    /// The values it takes, as text (`--engine local|podman`); empty: any.
    choices: Vec<String>,
}

/// A script's declared command line.
#[derive(Debug, Clone)]
pub(crate) struct Declaration {
    about: String,
    opts: Vec<Opt>,
}

/// What the words after the script path turned out to be.
#[derive(Debug)]
pub(crate) struct Split {
    /// The values the script gets from `args(...)`.
    pub values: Map,
    /// Words that are prun's (flags and targets), in order, for prun's own parser.
    pub rest: Vec<String>,
    /// The script's own words as given, in order: its options with their values and the
    /// words after `--` (what a report shows as the run's arguments).
    pub words: Vec<String>,
    /// `-h`/`--help` was given (and the script does not declare it).
    pub help: bool,
    /// The values of secret options, as text (see [`crate::redact`]).
    pub secrets: Vec<String>,
}

/// prun's options that take a value as the next word.
const PRUN_VALUED: &[&str] = &[
    "-j",
    "--parallel",
    "--db",
    "--json",
    "--allow",
    "--deny-env",
];

/// A malformed `args(#{...})` declaration; the message names the option.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeclError {
    /// Where the `args` call is, in front of what is wrong (the script's path goes first:
    /// `main.rhai:1:9: args: ...`).
    #[error("{line}:{column}: {error}")]
    At {
        line: usize,
        column: usize,
        error: Box<DeclError>,
    },
    #[error("args: `{name}.{key}` must be true or false")]
    NotBool { name: String, key: &'static str },
    #[error("args: `{0}` must be a map like #{{ help: \"...\" }}")]
    NotAMap(String),
    #[error("args: `{key}` has an unknown setting `{setting}`{hint} (valid: {valid})")]
    UnknownSetting {
        key: String,
        setting: String,
        hint: String,
        valid: String,
    },
    #[error("args: `{0}.default` must be an integer (the option is `int: true`), not {1}")]
    DefaultNotInt(String, String),
    #[error("args: `{0}` are all positional lists: only one can take the rest of the words")]
    TwoPositionalLists(String),
    #[error(
        "args: `{0}` cannot be an option name: a long name is not empty, does not start with `-` and holds no `=`, space or control character; a short one is a letter or digit"
    )]
    BadName(String),
    #[error("args: {name} is declared by both `{first}` and `{second}`")]
    SameName {
        name: String,
        first: String,
        second: String,
    },
    #[error("args: `{0}.short` must be one character")]
    Short(String),
    /// The pass that reads the declaration was stopped before it (by a limit of the
    /// engine, a cancel, `max_run_time`): the declaration is not known, and the run stops
    /// there too.
    #[error("the script was stopped before its args(#{{...}}) declaration: {0}")]
    Stopped(String),
    /// An `env` no variable can have: the option would silently never be read from it.
    #[error(
        "args: `{name}.env` must be an environment variable's name (not empty, without `=` or a NUL byte), not {value:?}"
    )]
    EnvName { name: String, value: String },
    #[error("args: `{name}.{key}` must be a string, not {not}")]
    NotText {
        name: String,
        key: &'static str,
        not: String,
    },
    #[error("args: `{0}.default` must be an array (the option is `list: true`), not {1}")]
    DefaultNotList(String, String),
    #[error(
        "args: `{0}.default` must be a string, a number or a bool (the value is text), not {1}"
    )]
    DefaultNotText(String, String),
    #[error("args: `about` must be a string, not {0}")]
    AboutNotText(String),
    #[error("args: `{0}` is a flag: it takes no value, so it cannot also {1}")]
    FlagWith(String, &'static str),
    #[error("args: `{0}` is a flag: it is false unless given, and takes no `\"default\"`")]
    FlagDefault(String),
    #[error(
        "args: `{0}.choices` must be a non-empty array of the values it takes (strings, or integers with `int: true`), not {1}"
    )]
    Choices(String, String),
    #[error("args: `{0}.default` must be one of its choices ({1}), not {2}")]
    DefaultNotAChoice(String, String, String),
    #[error("args: `{0}.{1}` must be an integer, not {2}")]
    BoundNotInt(String, &'static str, String),
    #[error("args: `{0}.{1}` bounds an integer: the option must be `int: true`")]
    BoundWithoutInt(String, &'static str),
    #[error("args: `{0}.min` ({1}) is more than its `max` ({2})")]
    BoundsCrossed(String, i64, i64),
    #[error("args: `{0}` cannot be both `int: true` and `duration: true`")]
    IntDuration(String),
    #[error("args: `{0}.default` is not a value the option takes: {1}")]
    BadDefault(String, String),
}

/// A word of the command line that the script's declaration does not accept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArgsError {
    #[error("option {0} needs a value")]
    NeedsValue(String),
    #[error("option {0} takes no value")]
    TakesNoValue(String),
    #[error("unknown option {name}{hint}")]
    Unknown { name: String, hint: String },
    #[error("{name} takes an integer, not \"{value}\"")]
    NotAnInteger { name: String, value: String },
    #[error("{name} takes an integer {range}, not \"{value}\"")]
    OutOfRange {
        name: String,
        value: String,
        range: String,
    },
    #[error(
        "{name} takes a duration (seconds, or a number with a unit: 30s, 2m, 1h 30m, 2d), not \"{value}\""
    )]
    NotADuration { name: String, value: String },
    /// A duration too long or negative: the reason names the value.
    #[error("{name}: {reason}")]
    BadDuration {
        name: String,
        reason: crate::duration::DurationError,
    },
    #[error("{name} takes one of {choices}, not \"{value}\"")]
    NotAChoice {
        name: String,
        value: String,
        choices: String,
    },
    #[error(
        "{name} is a flag: its variable {var} must say true or false (1/0, yes/no, on/off), not \"{value}\""
    )]
    NotAFlag {
        name: String,
        var: String,
        value: String,
    },
    #[error("missing required {name}{hint}")]
    Missing { name: String, hint: String },
    /// An option that takes one value was given more than once (its values are not
    /// shown: one may be a secret).
    #[error(
        "{name} is given {times} times: it takes one value (an option declared with list: true takes several)"
    )]
    Repeated { name: String, times: usize },
    #[error("unexpected argument \"{0}\"")]
    Unexpected(String),
}

/// Every option can be given on the command line, by one name only: a long name such as
/// `a=b` or `two words`, or a second option named `-x`, was accepted and never matched.
fn check_names(opts: &[Opt]) -> Result<(), DeclError> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for o in opts.iter().filter(|o| !o.positional) {
        let long_ok = !o.long.is_empty()
            && !o.long.starts_with('-')
            && !o
                .long
                .chars()
                .any(|c| c == '=' || c.is_whitespace() || c.is_control());
        if !long_ok {
            return Err(DeclError::BadName(format!("--{}", o.long)));
        }
        let mut names = vec![format!("--{}", o.long)];
        if let Some(c) = o.short {
            if !c.is_alphanumeric() {
                return Err(DeclError::BadName(format!("-{c}")));
            }
            names.push(format!("-{c}"));
        }
        for name in names {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(DeclError::SameName {
                    name,
                    first: (*first).to_string(),
                    second: o.key.clone(),
                });
            }
            seen.push((name, &o.key));
        }
    }
    Ok(())
}

fn flag_of(spec: &Map, key: &'static str, name: &str) -> Result<bool, DeclError> {
    match spec.get(key) {
        None => Ok(false),
        Some(v) => v.as_bool().map_err(|_| DeclError::NotBool {
            name: name.to_string(),
            key,
        }),
    }
}

/// An `int` option's `min` or `max`, if given: an integer.
fn bound_of(
    spec: &Map,
    key: &'static str,
    name: &str,
    int: bool,
) -> Result<Option<i64>, DeclError> {
    let Some(v) = spec.get(key) else {
        return Ok(None);
    };
    if !int {
        return Err(DeclError::BoundWithoutInt(name.to_string(), key));
    }
    v.as_int()
        .map(Some)
        .map_err(|t| DeclError::BoundNotInt(name.to_string(), key, crate::diag::type_words(t)))
}

/// The text of a setting that is a string (`long`, `help`, `env`), if given.
fn text_of(spec: &Map, key: &'static str, name: &str) -> Result<Option<String>, DeclError> {
    match spec.get(key) {
        None => Ok(None),
        Some(v) => v
            .clone()
            .into_string()
            .map(Some)
            .map_err(|t| DeclError::NotText {
                name: name.to_string(),
                key,
                not: crate::diag::type_words(t),
            }),
    }
}

/// An option's `"default"` as the type its given values have: an integer for `int: true`,
/// else text (`"default": 7` is `"7"`, as `--port 7` is), an array of them for
/// `list: true`. `()` is no default.
fn default_of(
    name: &str,
    d: &Dynamic,
    int: bool,
    list: bool,
) -> Result<Option<Dynamic>, DeclError> {
    let item = |v: &Dynamic| -> Result<Dynamic, DeclError> {
        if int {
            if v.is_int() {
                return Ok(v.clone());
            }
            return v
                .clone()
                .into_string()
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .map(Dynamic::from)
                .ok_or_else(|| DeclError::DefaultNotInt(name.to_string(), format!("{v:?}")));
        }
        if v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
            Ok(Dynamic::from(v.to_string()))
        } else {
            Err(DeclError::DefaultNotText(
                name.to_string(),
                crate::diag::type_words(v.type_name()),
            ))
        }
    };
    if d.is_unit() {
        return Ok(None);
    }
    if !list {
        return item(d).map(Some);
    }
    let items = d.clone().try_cast::<Array>().ok_or_else(|| {
        DeclError::DefaultNotList(name.to_string(), crate::diag::type_words(d.type_name()))
    })?;
    let items: Array = items.iter().map(item).collect::<Result<_, _>>()?;
    Ok(Some(items.into()))
}

/// An option's `choices` as text (an `int` option's as integers: `7` for `"07"`), checked
/// against its `"default"`; none when it has no `choices`.
fn choices_of(
    spec: &Map,
    name: &str,
    int: bool,
    default: Option<&Dynamic>,
) -> Result<Vec<String>, DeclError> {
    let Some(given) = spec.get("choices") else {
        return Ok(Vec::new());
    };
    let bad = || DeclError::Choices(name.to_string(), format!("{given:?}"));
    let items = given.clone().try_cast::<Array>().ok_or_else(bad)?;
    if items.is_empty() {
        return Err(bad());
    }
    let mut choices = Vec::new();
    for item in &items {
        let text = match (int, item.is_int(), item.is_string()) {
            (true, true, _) => item.to_string(),
            (true, false, true) => item
                .to_string()
                .parse::<i64>()
                .map_err(|_| bad())?
                .to_string(),
            (false, _, true) => item.to_string(),
            _ => return Err(bad()),
        };
        choices.push(text);
    }
    let defaults = match default {
        None => Vec::new(),
        Some(d) => d
            .clone()
            .try_cast::<Array>()
            .unwrap_or_else(|| vec![d.clone()]),
    };
    if let Some(d) = defaults.iter().find(|d| !choices.contains(&d.to_string())) {
        return Err(DeclError::DefaultNotAChoice(
            name.to_string(),
            choices.join(", "),
            format!("{d:?}"),
        ));
    }
    Ok(choices)
}

/// Whether an `env` fallback names a variable that holds a secret.
fn secret_env(name: &str) -> bool {
    let name = name.to_uppercase();
    ["PASSWORD", "TOKEN", "SECRET"]
        .iter()
        .any(|w| name.contains(w))
}

/// The text forms of an option's value (each item of a list); a flag has none.
fn secret_texts(value: &Dynamic) -> Vec<String> {
    if value.is_unit() || value.is_bool() {
        return Vec::new();
    }
    match value.clone().try_cast::<Array>() {
        Some(items) => items.iter().flat_map(secret_texts).collect(),
        None => vec![value.to_string()],
    }
}

impl Declaration {
    /// Reads a declaration map; a malformed one is an error naming the option.
    pub(crate) fn parse(decl: &Map) -> Result<Declaration, DeclError> {
        let mut about = String::new();
        let mut opts = Vec::new();
        for (k, v) in decl {
            let key = k.to_string();
            if key == "about" {
                about = v
                    .clone()
                    .into_string()
                    .map_err(|t| DeclError::AboutNotText(crate::diag::type_words(t)))?;
                continue;
            }
            let spec = v
                .clone()
                .try_cast::<Map>()
                .ok_or_else(|| DeclError::NotAMap(key.clone()))?;
            for s in spec.keys() {
                let known = [
                    "short",
                    "long",
                    "help",
                    "default",
                    "required",
                    "flag",
                    "int",
                    "list",
                    "env",
                    "positional",
                    "secret",
                    "choices",
                    "min",
                    "max",
                    "duration",
                ];
                if !known.contains(&s.as_str()) {
                    return Err(DeclError::UnknownSetting {
                        key,
                        setting: s.to_string(),
                        hint: crate::suggest::hint(s, known, "`"),
                        valid: known.join(", "),
                    });
                }
            }
            let short = match spec.get("short") {
                None => None,
                Some(s) => {
                    let s = s.to_string();
                    let mut chars = s.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Some(c),
                        _ => return Err(DeclError::Short(key)),
                    }
                }
            };
            let int = flag_of(&spec, "int", &key)?;
            let list = flag_of(&spec, "list", &key)?;
            let flag = flag_of(&spec, "flag", &key)?;
            let required = flag_of(&spec, "required", &key)?;
            let positional = flag_of(&spec, "positional", &key)?;
            let duration = flag_of(&spec, "duration", &key)?;
            let min = bound_of(&spec, "min", &key, int)?;
            let max = bound_of(&spec, "max", &key, int)?;
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(DeclError::BoundsCrossed(key, lo, hi));
            }
            if int && duration {
                return Err(DeclError::IntDuration(key));
            }
            if flag {
                let with = [
                    ("be `int: true`", int),
                    ("be `duration: true`", duration),
                    ("be `required: true`", required),
                    ("be `positional: true`", positional),
                    ("have `choices`", spec.contains_key("choices")),
                ];
                if let Some((other, _)) = with.iter().find(|(_, on)| *on) {
                    return Err(DeclError::FlagWith(key, other));
                }
                if spec.contains_key("default") {
                    return Err(DeclError::FlagDefault(key));
                }
            }
            let default = match spec.get("default") {
                Some(d) => default_of(&key, d, int, list)?,
                None => None,
            };
            let env = text_of(&spec, "env", &key)?;
            if let Some(e) = env
                .as_ref()
                .filter(|e| e.is_empty() || e.contains(['=', '\0']))
            {
                return Err(DeclError::EnvName {
                    name: key,
                    value: e.clone(),
                });
            }
            let choices = choices_of(&spec, &key, int, default.as_ref())?;
            opts.push(Opt {
                long: text_of(&spec, "long", &key)?.unwrap_or_else(|| key.replace('_', "-")),
                short,
                help: text_of(&spec, "help", &key)?.unwrap_or_default(),
                default,
                required,
                flag,
                int,
                min,
                max,
                duration,
                list,
                secret: flag_of(&spec, "secret", &key)? || env.as_deref().is_some_and(secret_env),
                env,
                positional,
                choices,
                key,
            });
        }
        check_names(&opts)?;
        for o in &opts {
            o.check_default()?;
        }
        // Positionals take the free words in order, a list all the rest: the keys of a
        // Rhai map come sorted, not as written, so a list goes after the single ones
        // (`files` before `first` left `first` nothing), and a second list could never
        // get a word.
        opts.sort_by_key(|o| o.positional && o.list);
        let lists: Vec<&str> = opts
            .iter()
            .filter(|o| o.positional && o.list)
            .map(|o| o.key.as_str())
            .collect();
        if let [_, _, ..] = lists.as_slice() {
            return Err(DeclError::TwoPositionalLists(lists.join("`, `")));
        }
        Ok(Declaration { about, opts })
    }

    /// `; did you mean `--max-age`?` for a mistyped long option (`--max-ag`, `--max-ag=2d`):
    /// the nearest of the script's declared options, or an empty string.
    pub(crate) fn option_hint(&self, word: &str) -> String {
        let Some(name) = word.strip_prefix("--") else {
            return String::new();
        };
        let name = name.split('=').next().unwrap_or(name);
        let longs: Vec<String> = self
            .opts
            .iter()
            .filter(|o| !o.positional)
            .map(|o| format!("--{}", o.long))
            .collect();
        crate::suggest::hint(&format!("--{name}"), longs.iter().map(String::as_str), "`")
    }

    fn by_long(&self, name: &str) -> Option<&Opt> {
        self.opts.iter().find(|o| !o.positional && o.long == name)
    }

    /// Whether the script declares the option `--name`.
    pub(crate) fn declares_long(&self, name: &str) -> bool {
        self.by_long(name).is_some()
    }

    /// The declaration without the `env` settings that name a variable `visible` refuses
    /// (the policy's): such an option is not read from the environment, as if it had none.
    pub(crate) fn hiding_env(mut self, visible: &dyn Fn(&str) -> bool) -> Declaration {
        for o in &mut self.opts {
            o.env = o.env.take().filter(|e| visible(e));
        }
        self
    }

    fn by_short(&self, c: char) -> Option<&Opt> {
        self.opts
            .iter()
            .find(|o| !o.positional && o.short == Some(c))
    }

    /// Splits `words` (everything after the script path) between the script and prun.
    pub(crate) fn split(&self, words: &[String]) -> Result<Split, ArgsError> {
        self.split_with(words, false)
    }

    /// [`Declaration::split`] for `prun list` and `prun graph`: a required option that is
    /// not given reads as `()` instead of being an error.
    pub(crate) fn split_lenient(&self, words: &[String]) -> Result<Split, ArgsError> {
        self.split_with(words, true)
    }

    /// Whether `word` asks for the script's help: `-h` or `--help` (`--help=...` too), as
    /// a word of its own, when the script does not declare that option itself.
    fn asks_help(&self, word: &str) -> bool {
        let long = word == "--help" || word.starts_with("--help=");
        (word == "-h" && self.by_short('h').is_none()) || (long && self.by_long("help").is_none())
    }

    /// Splits `words` as [`Declaration::split`] says. `-h`/`--help` anywhere among them
    /// asks for the help, whatever else they hold, as clap's `-h` does for prun's own
    /// options: before an option that lacks its value (`-h -r`), and in the place of a
    /// value too (`-r -h`; a value that is `-h` is written `-r=-h`).
    fn split_with(&self, words: &[String], lenient: bool) -> Result<Split, ArgsError> {
        if words.iter().any(|w| self.asks_help(w)) {
            return Ok(Split {
                values: Map::new(),
                rest: Vec::new(),
                words: Vec::new(),
                help: true,
                secrets: Vec::new(),
            });
        }
        let mut raw: Vec<(&Opt, String)> = Vec::new();
        let mut positionals: Vec<String> = Vec::new();
        let mut rest = Vec::new();
        let declares_positionals = self.opts.iter().any(|o| o.positional);
        let mut script_only = false;
        // Whether each word is the script's (not prun's, not the `--` between them).
        let mut own = vec![true; words.len()];
        let mut i = 0;
        let value = |i: &mut usize, name: &str| -> Result<String, ArgsError> {
            *i += 1;
            words
                .get(*i)
                .cloned()
                .ok_or_else(|| ArgsError::NeedsValue(name.to_string()))
        };
        while i < words.len() {
            let w = &words[i];
            if w == "--" && !script_only {
                script_only = true;
                own[i] = false;
                i += 1;
                continue;
            }
            if let Some(long) = w.strip_prefix("--").filter(|l| !l.is_empty()) {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                if let Some(o) = self.by_long(name) {
                    let v = match (o.flag, inline) {
                        (true, None) => "true".into(),
                        (true, Some(_)) => {
                            return Err(ArgsError::TakesNoValue(format!("--{name}")));
                        }
                        (false, Some(v)) => v,
                        (false, None) => value(&mut i, &format!("--{name}"))?,
                    };
                    raw.push((o, v));
                } else if script_only {
                    let name = format!("--{name}");
                    let hint = self.option_hint(&name);
                    return Err(ArgsError::Unknown { name, hint });
                } else {
                    rest.push(w.clone());
                    own[i] = false;
                    if inline.is_none() && PRUN_VALUED.contains(&w.as_str()) {
                        i += 1;
                        if let Some(v) = words.get(i) {
                            rest.push(v.clone());
                            own[i] = false;
                        }
                    }
                }
            } else if w.len() > 1 && w.starts_with('-') && !w.starts_with("--") {
                let c = w[1..].chars().next().expect("a character after -");
                let attached = &w[1 + c.len_utf8()..];
                if let Some(o) = self.by_short(c) {
                    // Flags cluster as with getopt: `-ab` is `-a -b`, and `-an5` is
                    // `-a -n 5` when `-n` takes a value.
                    let (mut o, mut c, mut attached) = (o, c, attached);
                    while o.flag && !attached.is_empty() {
                        if attached.starts_with('=') {
                            return Err(ArgsError::TakesNoValue(format!("-{c}")));
                        }
                        raw.push((o, "true".into()));
                        c = attached.chars().next().expect("a character");
                        attached = &attached[c.len_utf8()..];
                        o = self.by_short(c).ok_or_else(|| ArgsError::Unknown {
                            name: format!("-{c} (in {w})"),
                            hint: String::new(),
                        })?;
                    }
                    // `-r=x` is `-r x`, as for prun's own options (`-j=2`); `-r=` is empty.
                    let inline = attached.strip_prefix('=');
                    let v = match (o.flag, inline, attached.is_empty()) {
                        (true, _, _) => "true".into(),
                        (false, Some(v), _) => v.to_string(),
                        (false, None, false) => attached.to_string(),
                        (false, None, true) => value(&mut i, &format!("-{c}"))?,
                    };
                    raw.push((o, v));
                } else if script_only {
                    return Err(ArgsError::Unknown {
                        name: format!("-{c}"),
                        hint: String::new(),
                    });
                } else {
                    rest.push(w.clone());
                    own[i] = false;
                    if attached.is_empty() && PRUN_VALUED.contains(&w.as_str()) {
                        i += 1;
                        if let Some(v) = words.get(i) {
                            rest.push(v.clone());
                            own[i] = false;
                        }
                    }
                }
            } else if declares_positionals || script_only {
                positionals.push(w.clone());
            } else {
                rest.push(w.clone());
                own[i] = false;
            }
            i += 1;
        }
        let values = self.values(&raw, positionals, lenient)?;
        let secrets = self
            .opts
            .iter()
            .filter(|o| o.secret)
            .filter_map(|o| values.get(o.key.as_str()))
            .flat_map(secret_texts)
            .collect();
        let words = words
            .iter()
            .zip(own)
            .filter(|(_, own)| *own)
            .map(|(w, _)| w.clone())
            .collect();
        Ok(Split {
            values,
            rest,
            words,
            help: false,
            secrets,
        })
    }

    fn values(
        &self,
        raw: &[(&Opt, String)],
        positionals: Vec<String>,
        lenient: bool,
    ) -> Result<Map, ArgsError> {
        let mut out = Map::new();
        let mut positionals = positionals.into_iter();
        for o in &self.opts {
            let name = o.shown_name();
            let convert = |s: &str| -> Result<Dynamic, ArgsError> {
                if o.flag {
                    // Given on the command line it is "true"; from its variable, "0" or
                    // "no" must not turn it on.
                    return match s.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "on" => Ok(Dynamic::TRUE),
                        "false" | "0" | "no" | "off" => Ok(Dynamic::FALSE),
                        _ => Err(ArgsError::NotAFlag {
                            name: name.clone(),
                            var: o.env.clone().unwrap_or_default(),
                            value: s.to_string(),
                        }),
                    };
                }
                o.typed(&name, s)
            };
            let given: Vec<String> = if o.positional {
                if o.list {
                    positionals.by_ref().collect()
                } else {
                    positionals.next().into_iter().collect()
                }
            } else {
                raw.iter()
                    .filter(|(r, _)| r.key == o.key)
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            let from_env = o
                .env
                .as_ref()
                .and_then(|e| std::env::var(e).ok())
                .filter(|v| !v.is_empty());
            let value = if o.list {
                let mut items = given;
                if items.is_empty()
                    && let Some(e) = from_env
                {
                    items = e.split(',').map(str::to_string).collect();
                }
                if items.is_empty() {
                    match &o.default {
                        Some(d) => d.clone(),
                        None if o.required && !lenient => {
                            return Err(ArgsError::Missing {
                                name,
                                hint: String::new(),
                            });
                        }
                        None => Array::new().into(),
                    }
                } else {
                    let a: Array = items.iter().map(|s| convert(s)).collect::<Result<_, _>>()?;
                    a.into()
                }
            } else {
                // A second value of an option that takes one is a mistake, as for prun's
                // own options: the script would silently get the last (`-r a -r b`).
                if given.len() > 1 && !o.flag {
                    return Err(ArgsError::Repeated {
                        name,
                        times: given.len(),
                    });
                }
                match given.last().cloned().or(from_env) {
                    Some(s) => convert(&s)?,
                    None if o.flag => Dynamic::from(false),
                    None => match &o.default {
                        Some(d) => d.clone(),
                        None if o.required && !lenient => {
                            let hint = o
                                .env
                                .as_ref()
                                .map(|e| format!(" (or set {e})"))
                                .unwrap_or_default();
                            return Err(ArgsError::Missing { name, hint });
                        }
                        None => Dynamic::UNIT,
                    },
                }
            };
            out.insert(o.key.as_str().into(), value);
        }
        if let Some(extra) = positionals.next() {
            return Err(ArgsError::Unexpected(extra.to_string()));
        }
        Ok(out)
    }

    /// The script's `--help` text on prun's command line: [`Declaration::script_usage`],
    /// and a pointer to prun's own options.
    pub(crate) fn usage(&self, script: &str) -> String {
        let mut out = self.script_usage(script);
        out.push_str(
            "\n\nprun's own options (-j, --dry-run, --json, ...) work here too: prun --help.",
        );
        out.push_str(&format!(
            "\nThe script's procs and protos: prun list {script}"
        ));
        out
    }

    /// The script's options and their help, as a library run's `--help` gives them (where
    /// prun's options are the embedder's settings, not words).
    pub(crate) fn script_usage(&self, script: &str) -> String {
        let mut out = String::new();
        if !self.about.is_empty() {
            out.push_str(&self.about);
            out.push_str("\n\n");
        }
        let positional: Vec<String> = self
            .opts
            .iter()
            .filter(|o| o.positional)
            .map(Opt::shown_positional)
            .collect();
        out.push_str(&format!("Usage: prun {script} [OPTIONS]"));
        for p in &positional {
            out.push(' ');
            out.push_str(p);
        }
        let arguments: Vec<(String, String)> = self
            .opts
            .iter()
            .filter(|o| o.positional)
            .zip(&positional)
            .map(|(o, shown)| (shown.clone(), o.described()))
            .collect();
        let mut rows: Vec<(String, String)> = Vec::new();
        for o in self.opts.iter().filter(|o| !o.positional) {
            let mut left = match o.short {
                Some(c) => format!("-{c}, --{}", o.long),
                None => format!("    --{}", o.long),
            };
            if !o.flag {
                left.push_str(&format!(" <{}>", o.key.to_uppercase()));
            }
            rows.push((left, o.described()));
        }
        rows.push(("-h, --help".into(), "Print this help".into()));
        // One column for both sections, as clap aligns them.
        let width = arguments
            .iter()
            .chain(&rows)
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0);
        for (title, section) in [("Arguments", arguments), ("Options", rows)] {
            if section.is_empty() {
                continue;
            }
            out.push_str(&format!("\n\n{title}:"));
            for (l, r) in section {
                out.push('\n');
                out.push_str(format!("  {l:<width$}  {r}").trim_end());
            }
        }
        out
    }
}

impl Opt {
    /// The option as its errors name it, as `--help` shows it: `option --port`,
    /// `argument <SRC>`.
    fn shown_name(&self) -> String {
        if self.positional {
            format!("argument {}", self.shown_positional())
        } else {
            format!("option --{}", self.long)
        }
    }

    /// A value given as text (not a flag's), as the script gets it: an integer for `int`
    /// (within `min` and `max`), else the text (a duration for `duration`); one of its
    /// `choices` when it has some. `name` is how errors name the option.
    fn typed(&self, name: &str, s: &str) -> Result<Dynamic, ArgsError> {
        let value = if self.int {
            let n = s
                .parse::<i64>()
                .map_err(|e| match self.overflow_range(e.kind()) {
                    Some(range) => ArgsError::OutOfRange {
                        name: name.to_string(),
                        value: s.to_string(),
                        range,
                    },
                    None => ArgsError::NotAnInteger {
                        name: name.to_string(),
                        value: s.to_string(),
                    },
                })?;
            if let Some(range) = self.range_missed(n) {
                return Err(ArgsError::OutOfRange {
                    name: name.to_string(),
                    value: s.to_string(),
                    range,
                });
            }
            Dynamic::from(n)
        } else {
            if self.duration {
                match crate::duration::parse(&Dynamic::from(s.to_string())) {
                    Ok(_) => {}
                    Err(crate::duration::DurationError::Invalid(_)) => {
                        return Err(ArgsError::NotADuration {
                            name: name.to_string(),
                            value: s.to_string(),
                        });
                    }
                    Err(reason) => {
                        return Err(ArgsError::BadDuration {
                            name: name.to_string(),
                            reason,
                        });
                    }
                }
            }
            Dynamic::from(s.to_string())
        };
        if !self.choices.is_empty() && !self.choices.contains(&value.to_string()) {
            return Err(ArgsError::NotAChoice {
                name: name.to_string(),
                value: s.to_string(),
                choices: self.choices.join(", "),
            });
        }
        Ok(value)
    }

    /// The range `n` is outside of, in words (`from 1 to 65535`, `of at least 1`), or
    /// `None` when it is within `min` and `max`.
    /// The range a number too large or too small for 64 bits misses (`kind` says which):
    /// the declared one, else what 64 bits hold; `None` for a word that is no number.
    fn overflow_range(&self, kind: &std::num::IntErrorKind) -> Option<String> {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        match kind {
            PosOverflow => Some(
                self.range_missed(i64::MAX)
                    .unwrap_or_else(|| format!("of at most {}", i64::MAX)),
            ),
            NegOverflow => Some(
                self.range_missed(i64::MIN)
                    .unwrap_or_else(|| format!("of at least {}", i64::MIN)),
            ),
            _ => None,
        }
    }

    fn range_missed(&self, n: i64) -> Option<String> {
        match (self.min, self.max) {
            (Some(lo), Some(hi)) if n < lo || n > hi => Some(format!("from {lo} to {hi}")),
            (Some(lo), None) if n < lo => Some(format!("of at least {lo}")),
            (None, Some(hi)) if n > hi => Some(format!("of at most {hi}")),
            _ => None,
        }
    }

    /// A `"default"` is a value the option takes (within `min` and `max`, a duration).
    fn check_default(&self) -> Result<(), DeclError> {
        let Some(d) = &self.default else {
            return Ok(());
        };
        let items = d
            .clone()
            .try_cast::<Array>()
            .unwrap_or_else(|| vec![d.clone()]);
        for item in items {
            let text = item.to_string();
            if let Err(e) = self.typed(&self.shown_name(), &text) {
                return Err(DeclError::BadDefault(self.key.clone(), e.to_string()));
            }
        }
        Ok(())
    }

    /// A positional argument as `--help` shows it: `<SRC>` when required, `[SRC]` when
    /// not, `...` after a list.
    fn shown_positional(&self) -> String {
        let n = self.key.to_uppercase();
        match (self.required, self.list) {
            (true, true) => format!("<{n}>..."),
            (true, false) => format!("<{n}>"),
            (false, true) => format!("[{n}]..."),
            (false, false) => format!("[{n}]"),
        }
    }

    /// The right-hand column of the option's `--help` row: its help, whether it is
    /// required or may be given many times, its default (`***` for a secret) and its
    /// variable.
    fn described(&self) -> String {
        let mut right = self.help.clone();
        let marks: Vec<&str> = [
            (self.required, "required"),
            (self.list && !self.positional, "repeatable"),
        ]
        .into_iter()
        .filter_map(|(on, mark)| on.then_some(mark))
        .collect();
        if !marks.is_empty() {
            right.push_str(&format!(" ({})", marks.join(", ")));
        }
        if let Some(d) = &self.default {
            let shown = if self.secret {
                "***".to_string()
            } else {
                d.to_string()
            };
            right.push_str(&format!(" [default: {shown}]"));
        }
        if !self.choices.is_empty() {
            right.push_str(&format!(" [possible values: {}]", self.choices.join(", ")));
        }
        if let Some(e) = &self.env {
            right.push_str(&format!(" [env: {e}]"));
        }
        right.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An option's declaration from its settings.
    fn spec(pairs: &[(&str, Dynamic)]) -> Dynamic {
        let m: Map = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect();
        m.into()
    }

    fn decl() -> Declaration {
        let mut d = Map::new();
        d.insert("about".into(), "Check backups".into());
        d.insert(
            "rclone_source".into(),
            spec(&[
                ("short", "r".into()),
                ("required", true.into()),
                ("help", "where".into()),
            ]),
        );
        d.insert("max_age".into(), spec(&[("default", "2d".into())]));
        d.insert(
            "queries_dir".into(),
            spec(&[("short", "q".into()), ("default", "queries".into())]),
        );
        d.insert(
            "port".into(),
            spec(&[("int", true.into()), ("default", Dynamic::from(5432_i64))]),
        );
        d.insert(
            "verbose".into(),
            spec(&[("short", "v".into()), ("flag", true.into())]),
        );
        Declaration::parse(&d).unwrap()
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn script_options_win_and_the_rest_is_prun_s() {
        let s = decl()
            .split(&words(&[
                "-r",
                "remote:b/",
                "-q",
                "qs",
                "-j",
                "4",
                "--port=6000",
                "-v",
                "t1",
            ]))
            .unwrap();
        assert_eq!(s.values["rclone_source"].to_string(), "remote:b/");
        assert_eq!(s.values["queries_dir"].to_string(), "qs");
        assert_eq!(s.values["port"].as_int().unwrap(), 6000);
        assert!(s.values["verbose"].as_bool().unwrap());
        assert_eq!(s.values["max_age"].to_string(), "2d");
        assert_eq!(s.rest, words(&["-j", "4", "t1"]));
    }

    #[test]
    fn errors_name_the_option() {
        let d = decl();
        assert!(
            d.split(&words(&[]))
                .unwrap_err()
                .to_string()
                .contains("--rclone-source")
        );
        assert!(
            d.split(&words(&["-r", "x", "--port", "many"]))
                .unwrap_err()
                .to_string()
                .contains("--port")
        );
        assert!(
            d.split(&words(&["-r"]))
                .unwrap_err()
                .to_string()
                .contains("-r")
        );
        assert!(
            d.split(&words(&["-r", "x", "--", "--bogus"]))
                .unwrap_err()
                .to_string()
                .contains("--bogus")
        );
    }

    #[test]
    fn secrets_are_declared_or_read_from_password_token_or_secret_variables() {
        let mut d = Map::new();
        d.insert("pw".into(), spec(&[("secret", true.into())]));
        d.insert("key".into(), spec(&[("env", "Vault_Token".into())]));
        d.insert("db".into(), spec(&[("env", "PGPASSWORD".into())]));
        d.insert(
            "s".into(),
            spec(&[("env", "my_secret".into()), ("list", true.into())]),
        );
        d.insert("home".into(), spec(&[("env", "PRUN_TEST_NOT_SET".into())]));
        d.insert(
            "quiet".into(),
            spec(&[("flag", true.into()), ("secret", true.into())]),
        );
        let d = Declaration::parse(&d).unwrap();
        let s = d
            .split(&words(&[
                "--pw", "p1", "--key", "k1", "--db", "d1", "--s", "a", "--s", "b", "--home", "h",
                "--quiet",
            ]))
            .unwrap();
        let mut secrets = s.secrets.clone();
        secrets.sort();
        assert_eq!(secrets, ["a", "b", "d1", "k1", "p1"]);
        assert_eq!(s.values["pw"].to_string(), "p1");
    }

    #[test]
    fn help_and_usage() {
        let d = decl();
        assert!(d.split(&words(&["--help"])).unwrap().help);
        // Before an option that lacks its value, and where its value would be.
        for asked in [
            &["-h", "-r"][..],
            &["--help", "-r"],
            &["-r", "-h"],
            &["-r", "--help"],
        ] {
            assert!(d.split(&words(asked)).unwrap().help, "{asked:?}");
        }
        let given = d.split(&words(&["-r=-h"])).unwrap();
        assert!(!given.help);
        assert_eq!(given.values["rclone_source"].to_string(), "-h");
        let u = d.usage("backup.rhai");
        assert!(u.starts_with("Check backups"));
        assert!(
            u.contains("-r, --rclone-source <RCLONE_SOURCE>  where (required)"),
            "{u}"
        );
        assert!(u.contains("[default: 2d]"));
    }
}
