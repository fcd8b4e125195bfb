//! The [`Graph`]: every proc and proto of a run, name lookup and creation from protos.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use rhai::{ImmutableString, Map};

use super::GraphError;
use super::def::{Body, Callback, Choices, DepSpec, List, ProcDef};
use super::need::{Answer, Need, NeedKey, Needs, closure_ctx};
use super::pattern::{Args, Template, has_placeholders, is_glob, wildcard_match};
use super::rules::{Rules, Slot};

/// Index of a proc in the graph (its registration order).
pub(crate) type ProcId = usize;
/// Index of a proto in the graph.
pub(crate) type ProtoId = usize;

/// A concrete proc: a name, its definition and the dependency names it was given.
#[derive(Debug, Clone)]
pub(crate) struct ProcNode {
    /// The script's own string when a script declared it: `run` and `create` return the
    /// names of many procs without copying them.
    pub name: ImmutableString,
    /// Its definition, which procs declared alike share: the body this proc runs is
    /// [`ProcNode::body`], which may be its own (see [`Graph::add_proc`]).
    pub def: Arc<ProcDef>,
    made: Made,
    /// Dependency names, with patterns filled and closures called; rdeps are appended later.
    pub deps: List<String>,
}

/// Where a proc comes from, and what it has that its shared definition does not say. One
/// enum, so that a proc's own command takes the room of a proto's id and values (a node is
/// 48 bytes either way).
#[derive(Debug, Clone)]
enum Made {
    /// Declared by the script, running its definition's body.
    Declared,
    /// Declared by the script with a command of its own: its definition is that of the
    /// proc declared before it, which said the same but for the command.
    OwnBody(Body),
    /// Made from a proto, with its placeholder values in template order.
    Proto(ProtoId, List<(String, String)>),
}

impl ProcNode {
    /// A proc running `def` as it is: made from proto `proto` with these placeholder
    /// values, or declared by the script (`None`).
    pub(crate) fn new(
        name: ImmutableString,
        def: Arc<ProcDef>,
        proto: Option<ProtoId>,
        args: Vec<(String, String)>,
    ) -> ProcNode {
        let made = match proto {
            Some(p) => Made::Proto(p, args.into()),
            None => Made::Declared,
        };
        ProcNode {
            name,
            def,
            made,
            deps: List::new(),
        }
    }

    /// What it runs: its own command, or its definition's body.
    pub(crate) fn body(&self) -> &Body {
        match &self.made {
            Made::OwnBody(body) => body,
            Made::Declared | Made::Proto(..) => &self.def.body,
        }
    }

    /// Its definition with the body it runs: the shared one itself, or (for a proc with a
    /// command of its own) a copy with its command.
    pub(crate) fn full_def(&self) -> Arc<ProcDef> {
        match &self.made {
            Made::OwnBody(body) => Arc::new(ProcDef {
                body: body.clone(),
                ..ProcDef::clone(&self.def)
            }),
            Made::Declared | Made::Proto(..) => self.def.clone(),
        }
    }

    /// The proto it was made from.
    pub(crate) fn proto(&self) -> Option<ProtoId> {
        match self.made {
            Made::Proto(p, _) => Some(p),
            Made::Declared | Made::OwnBody(_) => None,
        }
    }

    /// Placeholder values when made from a proto, in template order (none otherwise).
    pub(crate) fn args(&self) -> &[(String, String)] {
        match &self.made {
            Made::Proto(_, args) => args,
            Made::Declared | Made::OwnBody(_) => &[],
        }
    }
}

/// A template for procs.
#[derive(Debug)]
pub(crate) struct Proto {
    pub template: Template,
    pub def: Arc<ProcDef>,
    /// Procs created from this proto, in creation order.
    pub instances: Vec<ProcId>,
    /// The values its `arg_choices` lists allow, per placeholder, as sets: made at the
    /// first check, so that making each of 100,000 listed names checks it in constant time.
    listed: OnceLock<HashMap<String, HashSet<String>>>,
    /// Procs it did not make whose names its template fits (a plain `test::integration`
    /// beside `test::[n]`): a glob over its choices stands for them too. Kept up to date
    /// by [`Graph::scan_others`] with the procs defined since `scanned`, so that a glob
    /// dependency of each of many procs looks at every proc once, not once each.
    others: Vec<ProcId>,
    scanned: usize,
}

impl Proto {
    /// Whether the `arg_choices` list of `arg` holds `value`; `None` when `arg` has no
    /// list (no choices, or a closure computes them).
    pub(crate) fn lists(&self, arg: &str, value: &str) -> Option<bool> {
        let listed = self.listed.get_or_init(|| {
            self.def
                .extras()
                .arg_choices
                .iter()
                .filter_map(|(a, c)| match c {
                    Choices::List(v) => Some((a.clone(), v.iter().cloned().collect())),
                    Choices::Closure(_) => None,
                })
                .collect()
        });
        listed.get(arg).map(|set| set.contains(value))
    }
}

/// Who declared an rdep rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleSource {
    Proc(ProcId),
    Proto(ProtoId),
}

/// A plain rdep: "inject the declarer as a dependency of every proc matching `pattern`".
#[derive(Debug)]
pub(super) struct RdepRule {
    pub pattern: Template,
    pub source: RuleSource,
}

/// Every proc and proto known to a run.
#[derive(Debug)]
pub(crate) struct Graph {
    procs: Vec<ProcNode>,
    by_name: NameIndex,
    protos: Vec<Proto>,
    proto_by_name: HashMap<String, ProtoId>,
    rdep_rules: Rules<RdepRule>,
    sep: String,
    params: Map,
    /// Values of closures called outside the run state's lock (see [`super::need`]).
    answers: HashMap<NeedKey, Answer>,
}

impl Default for Graph {
    fn default() -> Self {
        Graph {
            procs: Vec::new(),
            by_name: NameIndex::default(),
            protos: Vec::new(),
            proto_by_name: HashMap::new(),
            rdep_rules: Rules::default(),
            sep: "::".into(),
            params: Map::new(),
            answers: HashMap::new(),
        }
    }
}

impl Graph {
    /// The placeholder separator used for protos defined from now on.
    pub(crate) fn set_separator(&mut self, sep: &str) {
        self.sep = sep.to_string();
    }

    /// The placeholder separator.
    pub(crate) fn separator(&self) -> &str {
        &self.sep
    }

    /// Merges `params` into the values every proc sees as `ctx.params`.
    pub(crate) fn set_params(&mut self, params: Map) {
        self.params.extend(params);
    }

    /// Values set with `set_params`.
    pub(crate) fn params(&self) -> &Map {
        &self.params
    }

    /// Number of procs.
    pub(crate) fn len(&self) -> usize {
        self.procs.len()
    }

    /// The proc with this id.
    pub(crate) fn proc(&self, id: ProcId) -> &ProcNode {
        &self.procs[id]
    }

    /// Appends a dependency name to a proc (rdep injection), unless it is already there.
    pub(crate) fn add_dep_name(&mut self, id: ProcId, dep: &str) -> bool {
        let deps = &mut self.procs[id].deps;
        if deps.iter().any(|d| d == dep) {
            return false;
        }
        deps.push(dep.to_string());
        true
    }

    /// The proto with this id.
    pub(crate) fn proto(&self, id: ProtoId) -> &Proto {
        &self.protos[id]
    }

    /// Looks a proc up by its exact name.
    pub(crate) fn lookup(&self, name: &str) -> Option<ProcId> {
        self.by_name.get(&self.procs, name)
    }

    /// Every proc, in registration order.
    pub(crate) fn procs(&self) -> impl Iterator<Item = (ProcId, &ProcNode)> {
        self.procs.iter().enumerate()
    }

    /// The procs whose names match a glob, in registration order.
    pub(crate) fn matching<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = ProcId> + 'a {
        self.procs
            .iter()
            .enumerate()
            .filter(move |(_, p)| wildcard_match(pattern, &p.name))
            .map(|(id, _)| id)
    }

    /// Every proto, in declaration order.
    pub(crate) fn protos(&self) -> impl Iterator<Item = &Proto> {
        self.protos.iter()
    }

    /// True once a proto was declared.
    pub(crate) fn has_protos(&self) -> bool {
        !self.protos.is_empty()
    }

    /// The proto declared with exactly this pattern.
    pub(crate) fn proto_named(&self, pattern: &str) -> Option<ProtoId> {
        self.proto_by_name.get(pattern).copied()
    }

    /// What the rdep rules inject into proc `x`: existing procs to add as dependencies, and
    /// protos to instantiate (with their args) whose instances are added after them.
    pub(crate) fn rdep_sources(&self, x: ProcId) -> (Vec<ProcId>, Vec<(ProtoId, Args)>) {
        let name = &self.procs[x].name;
        let mut inject = Vec::new();
        let mut create = Vec::new();
        for (_, rule) in self.rdep_rules.candidates(name) {
            let Some(extracted) = rule.pattern.matches(name) else {
                continue;
            };
            match rule.source {
                RuleSource::Proc(d) if d != x => inject.push(d),
                RuleSource::Proc(_) => {}
                RuleSource::Proto(p) => {
                    let proto = &self.protos[p];
                    if proto.template.matches(name).is_some() {
                        continue;
                    }
                    let args: Option<Args> = proto
                        .template
                        .params()
                        .map(|param| {
                            let v = extracted.iter().find(|(k, _)| k == param)?;
                            Some((param.to_string(), v.1.clone()))
                        })
                        .collect();
                    match args {
                        Some(args) => create.push((p, args)),
                        None => inject.extend(proto.instances.iter().copied()),
                    }
                }
            }
        }
        (inject, create)
    }

    /// How many rdep rules the lookups of names have looked at.
    #[cfg(test)]
    pub(crate) fn rdep_rules_looked_at(&self) -> usize {
        self.rdep_rules.looked_at()
    }

    /// Declares a plain proc. Its dependency closures (called with empty args) must have
    /// been answered (see [`super::need`]).
    ///
    /// Procs declared in a loop keep one definition, not one each, as the procs made from a
    /// proto do: when `def` says the same as the definition of the proc declared last (see
    /// [`ProcDef::same_but_command`]), the new proc keeps that one, and its command too
    /// when it is another (`cmd: ["gzip", `${i}`]`), beside it. Once the proc is added,
    /// `def` is the definition it keeps: the one to retry with (see `Core::define_proc`).
    pub(crate) fn add_proc(
        &mut self,
        name: impl Into<ImmutableString>,
        def: &mut Arc<ProcDef>,
    ) -> Result<ProcId, GraphError> {
        let name = name.into();
        printable(&name)?;
        if has_placeholders(&name) {
            return Err(GraphError::PlaceholderInProcName(name.to_string()));
        }
        if let Some(first) = self.lookup(&name) {
            let first = self.proc(first);
            let first = match first.proto() {
                Some(p) => format!("made from proto \"{}\"", self.protos[p].template.text()),
                None => format!("defined at {}", first.def.origin),
            };
            return Err(GraphError::DuplicateProc {
                name: name.to_string(),
                first,
            });
        }
        super::arity::check("proc", &name, def, &[])?;
        let deps = self.dep_names(&name, def, &[])?;
        let made = self.share(def);
        let id = self.insert(name, def.clone(), made, deps);
        self.add_rules(RuleSource::Proc(id))?;
        Ok(id)
    }

    /// How many protos there are: the id the next one gets.
    pub(crate) fn proto_len(&self) -> usize {
        self.protos.len()
    }

    /// Forgets the procs from `first` on and the protos from `first_proto` on (the newest),
    /// as if they had never been made: a definition its checks refuse leaves the graph as
    /// it was before it.
    pub(crate) fn forget_since(&mut self, first: ProcId, first_proto: ProtoId) {
        let rules: Vec<usize> = self
            .rdep_rules
            .all()
            .filter(|(_, r)| match r.source {
                RuleSource::Proc(p) => p >= first,
                RuleSource::Proto(p) => p >= first_proto,
            })
            .map(|(i, _)| i)
            .collect();
        for i in rules {
            self.rdep_rules.remove(i);
        }
        self.protos.truncate(first_proto);
        self.proto_by_name.retain(|_, p| *p < first_proto);
        for p in &mut self.protos {
            for ids in [&mut p.instances, &mut p.others] {
                while ids.last().is_some_and(|&id| id >= first) {
                    ids.pop();
                }
            }
            p.scanned = p.scanned.min(first);
        }
        for id in (first..self.procs.len()).rev() {
            self.by_name.remove(&self.procs, id);
        }
        self.procs.truncate(first);
    }

    /// Makes `def` the definition a new proc keeps: the definition of the proc declared
    /// last when it says the same, the proc's own command then taken out of `def` when it
    /// is another.
    fn share(&self, def: &mut Arc<ProcDef>) -> Made {
        let last = match self.procs.last() {
            Some(last) if !Arc::ptr_eq(&last.def, def) && last.def.same_but_command(def) => {
                last.def.clone()
            }
            _ => return Made::Declared,
        };
        if last.same_command(def) {
            *def = last;
            return Made::Declared;
        }
        let own = std::mem::replace(def, last);
        let body = match Arc::try_unwrap(own) {
            Ok(own) => own.body,
            Err(own) => own.body.clone(),
        };
        Made::OwnBody(body)
    }

    /// Declares a proto.
    pub(crate) fn add_proto(
        &mut self,
        pattern: &str,
        def: Arc<ProcDef>,
    ) -> Result<ProtoId, GraphError> {
        printable(pattern)?;
        if self.proto_by_name.contains_key(pattern) {
            return Err(GraphError::DuplicateProto(pattern.to_string()));
        }
        let template = Template::parse(pattern, &self.sep)?;
        let params: Vec<&str> = template.params().collect();
        super::arity::check("proto", pattern, &def, &params)?;
        for (arg, _) in &def.extras().arg_choices {
            if !template.params().any(|p| p == arg) {
                return Err(GraphError::BadPattern {
                    pattern: pattern.to_string(),
                    why: format!(
                        "arg_choices names [{arg}], which is not a placeholder{}",
                        crate::suggest::hint(arg, template.params(), "`")
                    ),
                });
            }
        }
        // A dependency is filled from the proto's own values: any other placeholder in it
        // could never be filled, whichever proc the proto makes.
        for dep in &def.deps {
            if let DepSpec::Name(dep) = dep {
                let dep_template = Template::parse(dep, &self.sep)?;
                if let Some(p) = dep_template
                    .params()
                    .find(|p| !template.params().any(|q| q == *p))
                {
                    return Err(GraphError::BadPattern {
                        pattern: pattern.to_string(),
                        why: format!(
                            "dependency \"{dep}\" uses [{p}], which is not a placeholder of the proto"
                        ),
                    });
                }
            }
        }
        let id = self.protos.len();
        self.protos.push(Proto {
            template,
            def,
            instances: Vec::new(),
            listed: OnceLock::new(),
            others: Vec::new(),
            scanned: 0,
        });
        self.proto_by_name.insert(pattern.to_string(), id);
        self.add_rules(RuleSource::Proto(id))?;
        Ok(id)
    }

    fn add_rules(&mut self, source: RuleSource) -> Result<(), GraphError> {
        let def = match source {
            RuleSource::Proc(id) => &self.procs[id].def,
            RuleSource::Proto(id) => &self.protos[id].def,
        };
        let rules = def
            .extras()
            .rdeps
            .iter()
            .map(|r| {
                Ok(RdepRule {
                    pattern: Template::parse(r, &self.sep)?,
                    source,
                })
            })
            .collect::<Result<Vec<_>, GraphError>>()?;
        for rule in rules {
            self.rdep_rules.add(Slot::of(&rule.pattern), rule);
        }
        Ok(())
    }

    fn insert(
        &mut self,
        name: ImmutableString,
        def: Arc<ProcDef>,
        made: Made,
        deps: Vec<String>,
    ) -> ProcId {
        let id = self.procs.len();
        let (len, cap) = (self.procs.len(), self.procs.capacity());
        if len == cap {
            // Grown by a quarter, not doubled: a run of many procs would keep up to as much
            // room again unused for its whole length.
            self.procs.reserve_exact((cap / 4).max(4));
        }
        self.by_name.insert(&self.procs, &name, id);
        if let Made::Proto(p, _) = made {
            self.protos[p].instances.push(id);
        }
        self.procs.push(ProcNode {
            name,
            def,
            made,
            deps: deps.into(),
        });
        id
    }

    /// Records what the closures of a [`Need`] returned.
    pub(crate) fn answer(&mut self, key: NeedKey, answer: Answer) {
        self.answers.insert(key, answer);
    }

    /// Forgets the answers of an operation that completed: the next one calls
    /// `arg_choices` closures afresh.
    pub(crate) fn forget_answers(&mut self, keys: &[NeedKey]) {
        for k in keys {
            self.answers.remove(k);
        }
    }

    /// The dependency names of a new proc: patterns filled, closures' answers spliced in.
    fn dep_names(
        &self,
        name: &str,
        def: &ProcDef,
        args: &[(String, String)],
    ) -> Result<Vec<String>, GraphError> {
        let closures: Vec<Callback> = def
            .deps
            .iter()
            .filter_map(|d| match d {
                DepSpec::Closure(cb) => Some(cb.clone()),
                DepSpec::Name(_) => None,
            })
            .collect();
        let mut answered = if closures.is_empty() {
            Vec::new()
        } else {
            let key = NeedKey::Deps(name.to_string());
            match self.answers.get(&key) {
                Some(a) => a.clone()?,
                None => {
                    let ctx = closure_ctx(name, args, &self.params);
                    let values = args.iter().map(|(_, v)| v.clone()).collect();
                    let need = Need::new(key, "a dependency closure", name, ctx, values, closures);
                    return Err(GraphError::Unresolved(Needs::one(need)));
                }
            }
        }
        .into_iter();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut push = |d: String| {
            if seen.insert(d.clone()) {
                out.push(d);
            }
        };
        for dep in &def.deps {
            match dep {
                DepSpec::Name(d) if has_placeholders(d) => push(fill_text(d, args)?),
                DepSpec::Name(d) => push(d.clone()),
                DepSpec::Closure(_) => {
                    for d in answered.next().unwrap_or_default() {
                        push(d);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Finds the one proto whose template matches `name`, with the extracted values.
    pub(crate) fn find_proto(&self, name: &str) -> Result<Option<(ProtoId, Args)>, GraphError> {
        let mut found: Option<(ProtoId, Args)> = None;
        for (id, proto) in self.protos.iter().enumerate() {
            if let Some(args) = proto.template.matches(name) {
                if let Some((other, _)) = &found {
                    return Err(GraphError::Ambiguous {
                        name: name.to_string(),
                        protos: vec![
                            self.protos[*other].template.text().to_string(),
                            proto.template.text().to_string(),
                        ],
                    });
                }
                found = Some((id, args));
            }
        }
        Ok(found)
    }

    /// The existing proc of this name, or one created from the proto its name matches.
    pub(crate) fn resolve(&mut self, name: &str) -> Result<Option<ProcId>, GraphError> {
        if let Some(id) = self.lookup(name) {
            return Ok(Some(id));
        }
        match self.find_proto(name)? {
            Some((proto, args)) => {
                self.check_choices(proto, &args)?;
                self.instantiate(proto, args).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The proc an rdep rule of `proto` injects, made with `args` (see
    /// [`Graph::rdep_sources`]): none when its `arg_choices` refuse them, as the rule then
    /// applies to no proc the proto may make.
    pub(crate) fn rdep_instance(
        &mut self,
        proto: ProtoId,
        args: Args,
    ) -> Result<Option<ProcId>, GraphError> {
        match self.check_choices(proto, &args) {
            Err(GraphError::NotAChoice { .. }) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => self.instantiate(proto, args).map(Some),
        }
    }

    /// Adds the procs defined since the last call that `proto` did not make and whose
    /// names its template fits to its `others`.
    fn scan_others(&mut self, proto: ProtoId) {
        let p = &self.protos[proto];
        let found: Vec<ProcId> = (p.scanned..self.procs.len())
            .filter(|&id| {
                self.procs[id].proto() != Some(proto)
                    && p.template.matches(&self.procs[id].name).is_some()
            })
            .collect();
        let p = &mut self.protos[proto];
        p.others.extend(found);
        p.scanned = self.procs.len();
    }

    /// Creates (or finds) the proc named by the proto filled with `args`.
    pub(crate) fn instantiate(&mut self, proto: ProtoId, args: Args) -> Result<ProcId, GraphError> {
        let name = self.protos[proto].template.fill(&args)?;
        printable(&name)?;
        // Its own placeholder as its value: the name left it as the pattern writes it.
        // Other values in brackets are values (`[b]` for [a] reaches a command as written).
        if let Some((arg, _)) = args.iter().find(|(a, v)| {
            v.strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .is_some_and(|v| v == a)
        }) {
            return Err(GraphError::UnfilledPlaceholder {
                name,
                proto: self.protos[proto].template.text().to_string(),
                arg: arg.clone(),
            });
        }
        if let Some(id) = self.lookup(&name) {
            return Ok(id);
        }
        let def = self.protos[proto].def.clone();
        if let Body::Shell(text) = &def.body {
            super::shell::check_shell(text, &args)?;
        }
        let deps = self.dep_names(&name, &def, &args)?;
        let made = Made::Proto(proto, args.into());
        Ok(self.insert(name.into(), def, made, deps))
    }

    fn choices(&self, proto: ProtoId, arg: &str) -> Result<Option<Vec<String>>, GraphError> {
        let p = &self.protos[proto];
        let Some((_, choices)) = p.def.extras().arg_choices.iter().find(|(a, _)| a == arg) else {
            return self.mapped_choices(proto, arg);
        };
        match choices {
            Choices::List(v) => Ok(Some(v.clone())),
            Choices::Closure(cb) => {
                let key = NeedKey::Choices(proto, arg.to_string());
                let lists = self.answered(proto, key, cb)?;
                Ok(Some(lists.concat()))
            }
        }
    }

    /// The choices of `arg` from the closure a proto gives as its whole `arg_choices` map;
    /// a key that is not a placeholder is an error.
    fn mapped_choices(&self, proto: ProtoId, arg: &str) -> Result<Option<Vec<String>>, GraphError> {
        let p = &self.protos[proto];
        let Some(cb) = &p.def.extras().choices_map else {
            return Ok(None);
        };
        let lists = self.answered(proto, NeedKey::ChoicesMap(proto), cb)?;
        let mut found = None;
        for list in lists {
            let (key, values) = list.split_first().map_or(("", &[][..]), |(k, v)| (k, v));
            if !p.template.params().any(|param| param == key) {
                return Err(GraphError::BadPattern {
                    pattern: p.template.text().to_string(),
                    why: format!(
                        "its arg_choices closure returned [{key}], which is not a placeholder{}",
                        crate::suggest::hint(key, p.template.params(), "`")
                    ),
                });
            }
            if key == arg {
                found = Some(values.to_vec());
            }
        }
        Ok(found)
    }

    /// The answer to the `arg_choices` closure `cb` of `proto`, or the need for it.
    fn answered(
        &self,
        proto: ProtoId,
        key: NeedKey,
        cb: &Callback,
    ) -> Result<Vec<Vec<String>>, GraphError> {
        if let Some(a) = self.answers.get(&key) {
            return a.clone();
        }
        let name = self.protos[proto].template.text();
        let ctx = closure_ctx(name, &[], &self.params);
        let what = "the arg_choices closure";
        let need = Need::new(key, what, name, ctx, Vec::new(), vec![cb.clone()]);
        Err(GraphError::Unresolved(Needs::one(need)))
    }

    fn check_choices(&self, proto: ProtoId, args: &Args) -> Result<(), GraphError> {
        for (arg, value) in args {
            if self.protos[proto].lists(arg, value) == Some(true) {
                continue;
            }
            if let Some(allowed) = self.choices(proto, arg)?
                && !allowed.contains(value)
            {
                return Err(GraphError::NotAChoice {
                    proto: self.protos[proto].template.text().to_string(),
                    arg: arg.clone(),
                    value: value.clone(),
                    allowed,
                });
            }
        }
        Ok(())
    }

    /// `create(pattern)`: the procs a name or glob stands for, created from protos as needed.
    ///
    /// A glob in a placeholder expands over that placeholder's `arg_choices` (an error when it
    /// has none), followed by the other existing procs it matches; a glob that fits no proto
    /// matches existing proc names only.
    pub(crate) fn expand(&mut self, pattern: &str) -> Result<Vec<ProcId>, GraphError> {
        if let Some(id) = self.lookup(pattern) {
            return Ok(vec![id]);
        }
        if !is_glob(pattern) {
            return match self.resolve(pattern)? {
                Some(id) => Ok(vec![id]),
                None => Err(GraphError::NoMatch(pattern.to_string())),
            };
        }
        if let Some((proto, raw)) = self.find_proto(pattern)? {
            let mut combos: Vec<Args> = vec![Vec::new()];
            for (arg, value) in raw {
                let values = if is_glob(&value) {
                    let allowed = self.choices(proto, &arg)?.ok_or_else(|| {
                        GraphError::GlobWithoutChoices {
                            proto: self.protos[proto].template.text().to_string(),
                            arg: arg.clone(),
                            value: value.clone(),
                        }
                    })?;
                    let hits: Vec<String> = allowed
                        .iter()
                        .filter(|c| wildcard_match(&value, c))
                        .cloned()
                        .collect();
                    if hits.is_empty() {
                        return Err(GraphError::GlobNoMatch {
                            proto: self.protos[proto].template.text().to_string(),
                            arg,
                            value,
                            allowed,
                        });
                    }
                    hits
                } else {
                    self.check_choices(proto, &vec![(arg.clone(), value.clone())])?;
                    vec![value]
                };
                combos = combos
                    .into_iter()
                    .flat_map(|c| {
                        let arg = arg.clone();
                        values.iter().map(move |v| {
                            let mut c = c.clone();
                            c.push((arg.clone(), v.clone()));
                            c
                        })
                    })
                    .collect();
            }
            // All or nothing: an operation retried once the closures are answered must not
            // find some of them made already (a made name may equal the glob itself).
            let def = self.protos[proto].def.clone();
            let mut needs: Vec<Need> = Vec::new();
            for args in &combos {
                let name = self.protos[proto].template.fill(args)?;
                if self.lookup(&name).is_none()
                    && let Err(GraphError::Unresolved(n)) = self.dep_names(&name, &def, args)
                {
                    needs.extend(n.0.iter().cloned());
                }
            }
            if !needs.is_empty() {
                return Err(GraphError::Unresolved(Needs(Arc::new(needs))));
            }
            let mut ids = combos
                .into_iter()
                .map(|args| self.instantiate(proto, args))
                .collect::<Result<Vec<ProcId>, GraphError>>()?;
            // Every match: after the proto's, the other procs of names it fits.
            self.scan_others(proto);
            let others = self.protos[proto].others.iter().copied();
            ids.extend(others.filter(|&id| wildcard_match(pattern, &self.procs[id].name)));
            return Ok(ids);
        }
        let hits: Vec<ProcId> = self.matching(pattern).collect();
        if hits.is_empty() {
            return Err(GraphError::NoMatch(pattern.to_string()));
        }
        Ok(hits)
    }
}

/// The procs' names, as indices into the graph's procs (each name is kept once, in its
/// [`ProcNode`]): four bytes an entry, where a map from names would take 24.
#[derive(Debug, Default)]
struct NameIndex {
    table: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl NameIndex {
    /// The id of the proc named `name`.
    fn get(&self, procs: &[ProcNode], name: &str) -> Option<ProcId> {
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&id| &*procs[id as usize].name == name)
            .map(|&id| id as ProcId)
    }

    /// Removes `id`, which `procs` holds.
    fn remove(&mut self, procs: &[ProcNode], id: ProcId) {
        let hash = self.hasher.hash_one(&*procs[id].name);
        if let Ok(entry) = self.table.find_entry(hash, |&other| other as usize == id) {
            entry.remove();
        }
    }

    /// Adds `id`, the proc named `name` (not in `procs` yet).
    fn insert(&mut self, procs: &[ProcNode], name: &str, id: ProcId) {
        // Four billion procs would take hundreds of gigabytes before this.
        let id = u32::try_from(id).expect("fewer than 2^32 procs");
        let hasher = &self.hasher;
        let hash = hasher.hash_one(name);
        self.table.insert_unique(hash, id, |&other| {
            hasher.hash_one(&*procs[other as usize].name)
        });
    }
}

/// The args of a proc as a Rhai map (`ctx.args`).
pub(crate) fn args_map(args: &[(String, String)]) -> Map {
    args.iter()
        .map(|(k, v)| (k.as_str().into(), v.clone().into()))
        .collect()
}

/// Replaces each `[name]` whose name is one of `args` with its value, and leaves any other
/// bracket alone: for commands (`[ -e file ]` in a shell string) and file patterns (`[abc]`
/// in a glob) of procs made from protos. One pass: a value is never read again, so a
/// value `[b]` of `[a]` stays `[b]`, whatever the value of `[b]`.
pub(crate) fn fill_known(text: &str, args: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find(']').and_then(|close| {
            let key = &after[..close];
            let (_, v) = args.iter().find(|(k, _)| k == key)?;
            Some((v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces every `[name]` in `pattern` with its value; an unknown name is an error.
pub(crate) fn fill_text(pattern: &str, args: &[(String, String)]) -> Result<String, GraphError> {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let key = &rest[open + 1..close];
        let value = args
            .iter()
            .find(|(k, _)| k == key)
            .ok_or_else(|| GraphError::MissingArg {
                pattern: pattern.to_string(),
                arg: key.to_string(),
            })?;
        out.push_str(&rest[..open]);
        out.push_str(&value.1);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A name is one line of printable text, not empty: a newline or another control
/// character would break every line prun prints about it, and its log would be `.log`. A
/// bidirectional formatting character (U+202E, right-to-left override) would show the name
/// as another (`safe\u{202e}hs.exe` reads `safeexe.sh`): refused too.
fn printable(name: &str) -> Result<(), GraphError> {
    if name.is_empty() {
        return Err(GraphError::EmptyName);
    }
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(GraphError::ControlCharInName(name.to_string()));
    }
    Ok(())
}

/// The characters that change the direction of the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::graph::Body;

    fn def(choices: &[(&str, &[&str])], deps: &[&str]) -> Arc<ProcDef> {
        let mut d = ProcDef::new(Body::Cmd(["true"].into_iter().collect()), "test".into());
        d.deps = deps.iter().map(|d| DepSpec::Name(d.to_string())).collect();
        d.extras_mut().arg_choices = choices
            .iter()
            .map(|(k, v)| {
                let values = v.iter().map(|s| s.to_string()).collect();
                (k.to_string(), Choices::List(values))
            })
            .collect();
        Arc::new(d)
    }

    fn names(g: &Graph, ids: &[ProcId]) -> Vec<String> {
        ids.iter().map(|&i| g.proc(i).name.to_string()).collect()
    }

    #[test]
    fn fill_known_reads_each_value_once() {
        let args = vec![
            ("a".to_string(), "[b]".to_string()),
            ("b".to_string(), "Z".to_string()),
        ];
        assert_eq!(fill_known("[a]-[b]", &args), "[b]-Z");
        assert_eq!(
            fill_known("[[a]] [ -e x ] [c] [b", &args),
            "[[b]] [ -e x ] [c] [b"
        );
        assert_eq!(fill_known("plain", &args), "plain");
    }

    #[test]
    fn a_glob_expands_over_arg_choices_in_choice_order() {
        let mut g = Graph::default();
        g.add_proto(
            "build::[env]::[arch]",
            def(&[("env", &["dev", "prod"]), ("arch", &["x86", "arm"])], &[]),
        )
        .unwrap();
        let ids = g.expand("build::*::arm").unwrap();
        assert_eq!(names(&g, &ids), ["build::dev::arm", "build::prod::arm"]);
        let ids = g.expand("build::p?od::*").unwrap();
        assert_eq!(names(&g, &ids), ["build::prod::x86", "build::prod::arm"]);
        assert_eq!(g.expand("build::dev::arm").unwrap(), [ids[0] - 2]);
    }

    #[test]
    fn glob_and_choice_errors_name_the_placeholder() {
        let mut g = Graph::default();
        g.add_proto("run::[x]", def(&[], &[])).unwrap();
        g.add_proto("env::[e]", def(&[("e", &["a", "b"])], &[]))
            .unwrap();
        let e = g.expand("run::*").unwrap_err();
        assert!(
            matches!(e, GraphError::GlobWithoutChoices { ref arg, .. } if arg == "x"),
            "{e}"
        );
        assert!(matches!(
            g.expand("env::z*"),
            Err(GraphError::GlobNoMatch { .. })
        ));
        assert!(matches!(
            g.expand("env::c"),
            Err(GraphError::NotAChoice { .. })
        ));
        assert!(matches!(g.expand("nothing"), Err(GraphError::NoMatch(_))));
    }

    #[test]
    fn dependency_patterns_are_filled_from_the_parents_args() {
        let mut g = Graph::default();
        g.add_proto(
            "deploy::[env]",
            def(&[], &["build::[env]", "lint", "x::[env]::2"]),
        )
        .unwrap();
        let ids = g.expand("deploy::prod").unwrap();
        assert_eq!(
            g.proc(ids[0]).deps[..],
            ["build::prod", "lint", "x::prod::2"]
        );
        assert_eq!(
            g.proc(ids[0]).args(),
            [("env".to_string(), "prod".to_string())]
        );
    }

    #[test]
    fn a_name_matching_two_protos_is_ambiguous() {
        let mut g = Graph::default();
        g.add_proto("a::[x]", def(&[], &[])).unwrap();
        g.add_proto("[y]::b", def(&[], &[])).unwrap();
        assert!(matches!(
            g.resolve("a::b"),
            Err(GraphError::Ambiguous { .. })
        ));
    }

    #[test]
    fn duplicates_and_placeholders_in_proc_names_are_rejected() {
        let mut g = Graph::default();
        g.add_proc("p", &mut def(&[], &[])).unwrap();
        assert!(matches!(
            g.add_proc("p", &mut def(&[], &[])),
            Err(GraphError::DuplicateProc { .. })
        ));
        assert!(matches!(
            g.add_proc("q::[x]", &mut def(&[], &[])),
            Err(GraphError::PlaceholderInProcName(_))
        ));
        assert!(g.add_proto("bad::[x]", def(&[("y", &["1"])], &[])).is_err());
    }
}
