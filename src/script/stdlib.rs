//! The Rhai modules shipped inside the binary (`stdlib/*.rhai`), and how `import`
//! resolves: a module the embedder registered (`prun::RuntimeBuilder::module`) first, then
//! a stdlib module (unless the embedder turned the stdlib off), then a file relative to
//! the importing script. A file next to the script cannot shadow a stdlib module by
//! accident: the stdlib name wins (name a local module differently, or import it with a
//! path such as `"./fs"`).

use std::collections::HashMap;
use std::sync::Mutex;

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection, StaticModuleResolver};
use rhai::{
    Engine, EvalAltResult, GlobalRuntimeState, Module, ModuleResolver, Position, Scope, Shared,
};

/// The modules, by the name scripts import them with.
const MODULES: &[(&str, &str)] = &[
    ("fs", include_str!("../../stdlib/fs.rhai")),
    ("pg", include_str!("../../stdlib/pg.rhai")),
    ("rclone", include_str!("../../stdlib/rclone.rhai")),
    ("retry", include_str!("../../stdlib/retry.rhai")),
];

/// The names of the modules shipped in the binary.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(name, _)| *name)
}

/// Compiles a stdlib module when a script first imports it.
#[derive(Default)]
struct Embedded {
    /// Each module is evaluated once per run, on its first import.
    loaded: Mutex<HashMap<&'static str, Shared<Module>>>,
}

impl ModuleResolver for Embedded {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let Some(&(name, text)) = MODULES.iter().find(|(n, _)| *n == path) else {
            return Err(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into());
        };
        let origin = format!("{}{name}.rhai", super::identity::STDLIB_ORIGIN);
        super::identity::record_module(engine, &origin, text);
        if let Some(m) = self.loaded.lock().expect("stdlib").get(name) {
            return Ok(m.clone());
        }
        let mut ast = engine.compile(text).map_err(|e| {
            let msg = format!("stdlib module \"{name}\" does not compile: {e}");
            Box::new(EvalAltResult::ErrorInModule(
                name.to_string(),
                msg.into(),
                pos,
            ))
        })?;
        ast.set_source(format!("<stdlib>/{name}.rhai"));
        let module: Shared<Module> = Module::eval_ast_as_new(Scope::new(), &ast, engine)?.into();
        super::identity::record_module_closures(engine, &module, &format!("<stdlib>/{name}.rhai"));
        self.loaded
            .lock()
            .expect("stdlib")
            .insert(name, module.clone());
        Ok(module)
    }
}

/// Installs the resolver: the stdlib first, then files relative to the importing script.
pub(super) fn install(engine: &mut Engine) {
    install_with(engine, None::<StaticModuleResolver>, true);
}

/// Installs the resolver: the embedder's modules (`custom`) first, then the stdlib (when
/// `stdlib`), then files relative to the importing script.
pub(crate) fn install_with(
    engine: &mut Engine,
    custom: Option<impl ModuleResolver + 'static>,
    stdlib: bool,
) {
    let mut all = ModuleResolversCollection::new();
    if let Some(custom) = custom {
        all.push(custom);
    }
    if stdlib {
        all.push(Embedded::default());
    }
    all.push(Files {
        loaded: Mutex::default(),
    });
    engine.set_module_resolver(all);
}

/// The file `import "name"` loads from a script whose source (its path) is `importer`:
/// `name.rhai` relative to the importer's directory (relative to the working directory
/// when the importer's path is, or when there is no importer).
pub(crate) fn module_file(name: &str, importer: Option<&str>) -> std::path::PathBuf {
    let dir = importer.and_then(|s| std::path::Path::new(s).parent());
    FileModuleResolver::new().get_file_path(name, dir)
}

/// Modules from files relative to the importing script, loaded as Rhai's
/// [`FileModuleResolver`] loads them (each file evaluated once per run), except that a
/// module's source is its file's path (`lib.rhai`, so an error inside it reads
/// `lib.rhai:3:5`, not `lib:3:5`) and that its closures stay callable from outside it
/// ([`super::identity::record_module_closures`]). Each file's text is recorded for the
/// fingerprints of closures that call into modules ([`super::identity::record_module`]).
struct Files {
    loaded: Mutex<HashMap<std::path::PathBuf, Shared<Module>>>,
}

std::thread_local! {
    /// The module files being loaded on this thread, outermost first (an import runs the
    /// module's top level, which may import further, on the same thread).
    static LOADING: std::cell::RefCell<Vec<std::path::PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A module file being loaded: on [`LOADING`] until dropped.
struct Loading;

/// Modules that import each other: the chain of files, the first one again at its end.
#[derive(Debug, thiserror::Error)]
#[error("import cycle: {}", .0.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" -> "))]
struct ImportCycle(Vec<std::path::PathBuf>);

impl Loading {
    /// Marks `file` as being loaded, or returns the import cycle when it is already.
    fn enter(file: &std::path::Path) -> Result<Loading, ImportCycle> {
        LOADING.with_borrow_mut(|stack| {
            if let Some(at) = stack.iter().position(|f| f == file) {
                let mut chain = stack[at..].to_vec();
                chain.push(file.to_path_buf());
                return Err(ImportCycle(chain));
            }
            stack.push(file.to_path_buf());
            Ok(Loading)
        })
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        LOADING.with_borrow_mut(|stack| {
            stack.pop();
        });
    }
}

impl ModuleResolver for Files {
    fn resolve_raw(
        &self,
        engine: &Engine,
        global: &mut GlobalRuntimeState,
        scope: &mut Scope,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let file = module_file(path, global.source());
        if let Some(m) = self.loaded.lock().expect("modules").get(&file) {
            return Ok(m.clone());
        }
        let shown = file.to_string_lossy().into_owned();
        let in_module = |e| Box::new(EvalAltResult::ErrorInModule(shown.clone(), e, pos));
        let text = match super::read_script(&file) {
            Ok(text) => text,
            // Its message names the file looked for (see [`module_file`]).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into());
            }
            // It is there but cannot be read (a directory, not UTF-8, no permission): say
            // so rather than "not found".
            Err(e) => {
                let msg = format!("cannot read module {}: {e}", crate::paths::shown(&file));
                return Err(in_module(
                    EvalAltResult::ErrorRuntime(msg.into(), Position::NONE).into(),
                ));
            }
        };
        // A module that imports itself, through others or not, would be loaded again
        // and again until the stack ran out (Rhai caches a module once it is loaded).
        let _loading = match Loading::enter(&file) {
            Ok(guard) => guard,
            Err(cycle) => {
                let msg = cycle.to_string();
                let e = EvalAltResult::ErrorRuntime(msg.into(), Position::NONE);
                return Err(in_module(e.into()));
            }
        };
        super::identity::record_module(engine, &shown, &text);
        let mut ast = engine.compile(&text).map_err(|e| {
            let at = crate::diag::syntax_error_at(engine, &text, &e.0, e.1);
            in_module(EvalAltResult::ErrorParsing(*e.0, at).into())
        })?;
        ast.set_source(shown.as_str());
        super::identity::remember(engine, &ast);
        super::identity::record_run_time_imports(engine, &ast, &shown);
        let module: Shared<Module> = Module::eval_ast_as_new_raw(engine, scope, global, &ast)
            .map_err(in_module)?
            .into();
        super::identity::record_module_closures(engine, &module, &shown);
        self.loaded
            .lock()
            .expect("modules")
            .insert(file, module.clone());
        Ok(module)
    }

    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let mut global = engine.new_global_runtime_state();
        global.source = source.map(Into::into);
        self.resolve_raw(engine, &mut global, &mut Scope::new(), path, pos)
    }
}
