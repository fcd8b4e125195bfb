//! Rules keyed by the names they may match (rdep rules, `when_scheduled` targets), so
//! that finding the rules of one name does not look at every rule: a run of thousands of
//! procs, each with its own rule, would otherwise compare every name with every rule.
//!
//! A rule is filed under the one name it matches (a name, or a template without
//! placeholders), or under the first part of the names it matches (`build` for
//! `build::[env]`, with the template's separator), or, when neither is known (`[x]::b`),
//! with the rules looked at for every name.

use std::collections::HashMap;

use super::pattern::Template;

/// Where a rule is filed: made from its template ([`Slot::of`]) or its one name
/// ([`Slot::name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The one name it matches.
    Exact(Box<str>),
    /// The separator, and the first part of each name it matches.
    Head(Box<str>, Box<str>),
    /// Any name.
    Other,
}

impl Slot {
    /// The slot of a rule matching the names `template` matches.
    pub(crate) fn of(template: &Template) -> Slot {
        if let Some(name) = template.literal() {
            return Slot::Exact(name.into());
        }
        match template.head() {
            Some(head) => Slot::Head(template.separator().into(), head.into()),
            None => Slot::Other,
        }
    }

    /// The slot of a rule matching the one name `name`.
    pub(crate) fn name(name: &str) -> Slot {
        Slot::Exact(name.into())
    }
}

/// Indices of rules, by a name or the first part of a name.
type Filed = HashMap<Box<str>, Vec<usize>>;

/// Rules of type `T`, in the order they were added, found by the names they may match.
/// A lookup allocates nothing but its answer (none when no rule may match): it is made
/// for every proc scheduled.
#[derive(Debug)]
pub(crate) struct Rules<T> {
    entries: Vec<Option<(Slot, T)>>,
    /// The [`Slot::Exact`] rules, by name.
    exact: Filed,
    /// The [`Slot::Head`] rules, by separator (each once), then by first part.
    heads: Vec<(Box<str>, Filed)>,
    /// The [`Slot::Other`] rules.
    other: Vec<usize>,
    /// How many rules were looked at by [`Rules::candidates`], for tests of the work done.
    #[cfg(test)]
    looked_at: std::cell::Cell<usize>,
}

impl<T> Default for Rules<T> {
    fn default() -> Self {
        Rules {
            entries: Vec::new(),
            exact: HashMap::new(),
            heads: Vec::new(),
            other: Vec::new(),
            #[cfg(test)]
            looked_at: std::cell::Cell::new(0),
        }
    }
}

impl<T> Rules<T> {
    /// Adds a rule filed in `slot`; returns its index.
    pub(crate) fn add(&mut self, slot: Slot, rule: T) -> usize {
        let i = self.entries.len();
        match &slot {
            Slot::Exact(name) => self.exact.entry(name.clone()).or_default().push(i),
            Slot::Head(sep, head) => {
                let at = match self.heads.iter().position(|(s, _)| s == sep) {
                    Some(at) => at,
                    None => {
                        self.heads.push((sep.clone(), HashMap::new()));
                        self.heads.len() - 1
                    }
                };
                self.heads[at].1.entry(head.clone()).or_default().push(i);
            }
            Slot::Other => self.other.push(i),
        }
        self.entries.push(Some((slot, rule)));
        i
    }

    /// Removes the rule at `i`; an index removed before is left. Once every rule is
    /// removed, indices start again from 0 (an index kept from before may then name a
    /// new rule: drop the indices of removed rules).
    pub(crate) fn remove(&mut self, i: usize) {
        let Some((slot, _)) = self.entries.get_mut(i).and_then(Option::take) else {
            return;
        };
        let drop_from = |filed: &mut Vec<usize>| {
            if let Some(at) = filed.iter().position(|&j| j == i) {
                filed.swap_remove(at);
            }
            filed.is_empty()
        };
        match &slot {
            Slot::Exact(name) => {
                if self.exact.get_mut(name).is_some_and(drop_from) {
                    self.exact.remove(name);
                }
            }
            Slot::Head(sep, head) => {
                if let Some((_, by_head)) = self.heads.iter_mut().find(|(s, _)| s == sep)
                    && by_head.get_mut(head).is_some_and(drop_from)
                {
                    by_head.remove(head);
                }
            }
            Slot::Other => {
                drop_from(&mut self.other);
            }
        }
        // None left: the room of the removed ones is given back (a watch re-runs its
        // procs, and their rules come and go each time).
        if self.exact.is_empty()
            && self.other.is_empty()
            && self.heads.iter().all(|(_, by_head)| by_head.is_empty())
        {
            self.entries.clear();
        }
    }

    /// Every rule with its index, in the order they were added.
    pub(crate) fn all(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|(_, rule)| (i, rule)))
    }

    /// The rules that may match `name`, in the order they were added (each still to be
    /// matched against it).
    pub(crate) fn candidates(&self, name: &str) -> Vec<(usize, &T)> {
        let mut found: Vec<usize> = Vec::new();
        if let Some(filed) = self.exact.get(name) {
            found.extend_from_slice(filed);
        }
        for (sep, by_head) in &self.heads {
            if let Some(filed) = name.find(&**sep).and_then(|at| by_head.get(&name[..at])) {
                found.extend_from_slice(filed);
            }
        }
        found.extend_from_slice(&self.other);
        found.sort_unstable();
        #[cfg(test)]
        self.looked_at.set(self.looked_at.get() + found.len());
        found
            .into_iter()
            .filter_map(|i| self.entries[i].as_ref().map(|(_, rule)| (i, rule)))
            .collect()
    }

    /// How many rules [`Rules::candidates`] has looked at so far.
    #[cfg(test)]
    pub(crate) fn looked_at(&self) -> usize {
        self.looked_at.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template::parse(text, "::").expect("a template")
    }

    #[test]
    fn a_name_finds_its_own_rules_in_order_and_no_other() {
        let mut rules = Rules::default();
        rules.add(Slot::of(&template("build::[env]")), "build any");
        rules.add(Slot::of(&template("test")), "test");
        rules.add(Slot::of(&template("[x]::tail")), "any tail");
        rules.add(Slot::name("build::prod"), "build prod");
        rules.add(Slot::of(&template("buildx::[env]")), "buildx");
        let found = |name: &str| -> Vec<&str> {
            rules
                .candidates(name)
                .into_iter()
                .map(|(_, r)| *r)
                .collect()
        };
        assert_eq!(
            found("build::prod"),
            ["build any", "any tail", "build prod"]
        );
        assert_eq!(found("test"), ["test", "any tail"]);
        assert_eq!(found("other"), ["any tail"]);
    }

    #[test]
    fn a_removed_rule_is_found_no_more() {
        let mut rules = Rules::default();
        let a = rules.add(Slot::name("t"), 1);
        rules.add(Slot::name("t"), 2);
        rules.remove(a);
        rules.remove(a);
        let found: Vec<i32> = rules.candidates("t").into_iter().map(|(_, r)| *r).collect();
        assert_eq!(found, [2]);
        rules.remove(1);
        assert!(rules.entries.is_empty(), "no room kept for removed rules");
        assert_eq!(rules.add(Slot::name("u"), 3), 0);
        assert!(rules.candidates("t").is_empty());
    }

    #[test]
    fn templates_of_another_separator_are_found_by_their_own() {
        let mut rules = Rules::default();
        rules.add(
            Slot::of(&Template::parse("a/[x]", "/").expect("a template")),
            1,
        );
        rules.add(Slot::of(&template("a::[x]")), 2);
        let found = |name: &str| -> Vec<i32> {
            rules
                .candidates(name)
                .into_iter()
                .map(|(_, r)| *r)
                .collect()
        };
        assert_eq!(found("a/1"), [1]);
        assert_eq!(found("a::1"), [2]);
    }
}
