//! Name templates (`build::[env]`), glob patterns (`build::*`) and their matching.
//!
//! A template is literal text with `[param]` placeholders. A placeholder matches a non-empty
//! run of characters that does not contain the separator (default `::`), and whatever follows
//! a placeholder must be the end of the name or a literal starting with the separator. This
//! makes matching deterministic without backtracking: `deploy::[env]::[region]` splits
//! `deploy::prod::eu` in exactly one way. (parproc lets the last placeholder be empty or
//! contain the separator, which makes `a::[x]` and `a::[x]::[y]` both match `a::1::2`; prun
//! does not copy that.)

use super::GraphError;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    Param(String),
}

/// A parsed name template such as `build::[env]`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    text: String,
    sep: String,
    tokens: Vec<Token>,
}

/// Placeholder values in the order the template names them.
pub(crate) type Args = Vec<(String, String)>;

impl Template {
    /// Parses `text`, checking that placeholders are well formed and separated by `sep`.
    pub(crate) fn parse(text: &str, sep: &str) -> Result<Template, GraphError> {
        let bad = |why: String| GraphError::BadPattern {
            pattern: text.to_string(),
            why,
        };
        let mut tokens = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('[') {
                Some(0) => {
                    let close = rest
                        .find(']')
                        .ok_or_else(|| bad("a '[' has no closing ']'".into()))?;
                    let name = &rest[1..close];
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(bad(format!(
                            "placeholder '[{name}]' must be a non-empty identifier"
                        )));
                    }
                    if tokens.iter().any(|t| t == &Token::Param(name.to_string())) {
                        return Err(bad(format!("placeholder '[{name}]' appears twice")));
                    }
                    tokens.push(Token::Param(name.to_string()));
                    rest = &rest[close + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let lit = &rest[..end];
                    if lit.contains(']') {
                        return Err(bad("a ']' has no opening '['".into()));
                    }
                    tokens.push(Token::Lit(lit.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        for pair in tokens.windows(2) {
            if let [Token::Param(p), next] = pair {
                let ok = matches!(next, Token::Lit(l) if l.starts_with(sep));
                if !ok {
                    return Err(bad(format!(
                        "placeholder '[{p}]' must be followed by the separator \"{sep}\" or end the name"
                    )));
                }
            }
        }
        Ok(Template {
            text: text.to_string(),
            sep: sep.to_string(),
            tokens,
        })
    }

    /// The template as written.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The separator its placeholders are read with.
    pub(crate) fn separator(&self) -> &str {
        &self.sep
    }

    /// The one name it matches, when it has no placeholder.
    pub(crate) fn literal(&self) -> Option<&str> {
        match &self.tokens[..] {
            [] => Some(""),
            [Token::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// The first part (up to the separator) of every name it matches, when its leading
    /// text holds the separator: `build` for `build::[env]`.
    pub(crate) fn head(&self) -> Option<&str> {
        match self.tokens.first() {
            Some(Token::Lit(l)) => l.find(self.sep.as_str()).map(|at| &l[..at]),
            _ => None,
        }
    }

    /// Placeholder names in order.
    pub(crate) fn params(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|t| match t {
            Token::Param(p) => Some(p.as_str()),
            Token::Lit(_) => None,
        })
    }

    /// Matches a concrete name, returning the placeholder values in order.
    pub(crate) fn matches(&self, name: &str) -> Option<Args> {
        let mut args = Vec::new();
        let mut rest = name;
        for tok in &self.tokens {
            match tok {
                Token::Lit(l) => rest = rest.strip_prefix(l.as_str())?,
                Token::Param(p) => {
                    let end = rest.find(self.sep.as_str()).unwrap_or(rest.len());
                    if end == 0 {
                        return None;
                    }
                    args.push((p.clone(), rest[..end].to_string()));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(args)
    }

    /// The last placeholder and its value when `name` fits the template only with that
    /// value holding the separator (`build::a::b` for `build::[env]`), which no value can.
    pub(crate) fn fits_but_for_separator(&self, name: &str) -> Option<(&str, String)> {
        let (Token::Param(last), init) = self.tokens.split_last()? else {
            return None;
        };
        let mut rest = name;
        for tok in init {
            match tok {
                Token::Lit(l) => rest = rest.strip_prefix(l.as_str())?,
                Token::Param(_) => {
                    let end = rest.find(self.sep.as_str()).filter(|&e| e > 0)?;
                    rest = &rest[end..];
                }
            }
        }
        rest.contains(self.sep.as_str())
            .then(|| (last.as_str(), rest.to_string()))
    }

    /// Fills every placeholder from `args`; a missing value is an error naming it, and so
    /// is one the name could not be matched back to (empty, or holding the separator: an
    /// `arg_choices` value such as `"a::b"` would make a proc no name can reach).
    pub(crate) fn fill(&self, args: &[(String, String)]) -> Result<String, GraphError> {
        let mut out = String::with_capacity(self.text.len());
        for tok in &self.tokens {
            match tok {
                Token::Lit(l) => out.push_str(l),
                Token::Param(p) => {
                    let v = args.iter().find(|(k, _)| k == p).ok_or_else(|| {
                        GraphError::MissingArg {
                            pattern: self.text.clone(),
                            arg: p.clone(),
                        }
                    })?;
                    if v.1.is_empty() || v.1.contains(self.sep.as_str()) {
                        return Err(GraphError::BadPattern {
                            pattern: self.text.clone(),
                            why: format!(
                                "the value {:?} of [{p}] is empty or holds the separator {:?}: a placeholder's value is one non-empty part of a name",
                                v.1, self.sep
                            ),
                        });
                    }
                    out.push_str(&v.1);
                }
            }
        }
        Ok(out)
    }
}

/// True when `s` contains a `[placeholder]`.
pub(crate) fn has_placeholders(s: &str) -> bool {
    s.find('[').is_some_and(|i| s[i..].contains(']'))
}

/// True when `s` contains a `*` or `?` wildcard.
pub(crate) fn is_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Shell-style wildcard match: `*` matches any run of characters, `?` exactly one
/// character (not one byte: a name may hold multi-byte UTF-8). A `*` in the pattern is
/// always a wildcard, also where the name holds a `*`. Walks both strings in place,
/// without allocating: `run("c*")` matches every proc's name.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (mut p, mut t) = (pattern, text);
    // The pattern after the last `*`, and the text from which that `*`'s run is tried.
    let mut star: Option<(&str, &str)> = None;
    loop {
        let mut tc = t.chars();
        let Some(c) = tc.next() else { break };
        let mut pc = p.chars();
        match pc.next() {
            Some('*') => {
                p = pc.as_str();
                star = Some((p, t));
            }
            Some(x) if x == '?' || x == c => {
                p = pc.as_str();
                t = tc.as_str();
            }
            _ => match star {
                Some((after_star, from)) => {
                    let mut run = from.chars();
                    run.next();
                    p = after_star;
                    t = run.as_str();
                    star = Some((after_star, t));
                }
                None => return false,
            },
        }
    }
    p.chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Template {
        Template::parse(s, "::").unwrap()
    }

    #[test]
    fn matches_and_extracts_in_order() {
        let tpl = t("deploy::[env]::[region]");
        assert_eq!(
            tpl.matches("deploy::prod::eu"),
            Some(vec![
                ("env".into(), "prod".into()),
                ("region".into(), "eu".into())
            ])
        );
        assert_eq!(tpl.matches("deploy::prod"), None);
        assert_eq!(tpl.matches("deploy::::eu"), None);
        assert_eq!(tpl.matches("deploy::a::b::c"), None);
    }

    #[test]
    fn literal_prefix_and_suffix() {
        assert!(t("pre-[x]").matches("pre-1").is_some());
        let tpl = t("B::[a]::2");
        assert!(tpl.matches("B::1::2").is_some());
        assert!(tpl.matches("B::x::y::2").is_none());
        assert!(tpl.matches("B::1::3").is_none());
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(Template::parse("a-[x]-[y]", "::").is_err());
        assert!(Template::parse("a::[x][y]", "::").is_err());
        assert!(Template::parse("a::[x", "::").is_err());
        assert!(Template::parse("a::[x]::[x]", "::").is_err());
        assert!(Template::parse("a|[x]|[y]", "|").is_ok());
    }

    #[test]
    fn fill_names_missing_arg() {
        let tpl = t("dep::[x]::[y]");
        let err = tpl.fill(&[("x".into(), "1".into())]).unwrap_err();
        assert!(err.to_string().contains("\"y\""), "{err}");
        assert_eq!(
            tpl.fill(&[("y".into(), "2".into()), ("x".into(), "1".into())])
                .unwrap(),
            "dep::1::2"
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("build::*", "build::prod"));
        assert!(wildcard_match("p?o*", "prod"));
        assert!(!wildcard_match("d?v", "prod"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(!wildcard_match("", "a"));
        assert!(wildcard_match("", ""));
        assert!(wildcard_match("**", "ab"));
        assert!(wildcard_match("*b", "abab"));
        assert!(!wildcard_match("?", ""));
    }

    #[test]
    fn wildcards_count_characters_not_bytes() {
        // 'é' is two bytes, '日' three, '🦀' four: `?` takes each whole.
        assert!(wildcard_match("caf?", "café"));
        assert!(!wildcard_match("caf??", "café"));
        assert!(wildcard_match("?本", "日本"));
        assert!(wildcard_match("??", "日本"));
        assert!(!wildcard_match("???", "日本"));
        assert!(wildcard_match("t::?", "t::🦀"));
        assert!(wildcard_match("*é*", "résumé"));
        assert!(wildcard_match("r?sum?", "résumé"));
        assert!(!wildcard_match("r?sum", "résumé"));
        assert!(wildcard_match("日*", "日本語"));
        assert!(!wildcard_match("本*", "日本語"));
        assert!(wildcard_match("*語", "日本語"));
    }

    #[test]
    fn a_star_is_a_wildcard_where_the_name_holds_one() {
        assert!(wildcard_match("a*", "a*"));
        assert!(wildcard_match("*", "*x"));
        assert!(wildcard_match("*a", "*ba"));
        assert!(wildcard_match("x*y", "x*zy"));
        assert!(!wildcard_match("*a", "*b"));
    }
}
