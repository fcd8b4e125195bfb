//! `read_file`, `write_file`, `append_file` and `glob`.
//!
//! `glob` follows the shell: `*`, `?`, `[...]` and `**` do not match a leading `.`
//! (hidden files need `.*`), and directories that cannot be read are passed over. `**`
//! matches any number of directories (`src/**/*.rs`). A matched name that is not UTF-8 is
//! an error naming it (with `\xNN` for its bad bytes): a script string cannot hold it, and
//! leaving it out would silently skip a file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use rhai::{Array, Dynamic, Engine, EvalAltResult, NativeCallContext};

use crate::exec::fileglob::GlobError;

type R<T> = Result<T, Box<EvalAltResult>>;

/// Registers the file helpers.
pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("read_file", |ctx: NativeCallContext, path: &str| {
        let text = read_file(path)?;
        if super::job::current().is_none() && !crate::script::callback::in_called_closure() {
            crate::script::identity::record_top_level_read(ctx.engine(), path);
        }
        Ok::<_, Box<EvalAltResult>>(text)
    });
    engine.register_fn("write_file", |path: &str, text: &str| {
        write("write_file", path, text, false)
    });
    engine.register_fn("append_file", |path: &str, text: &str| {
        write("append_file", path, text, true)
    });
    engine.register_fn("glob", |pattern: &str| -> R<Array> {
        Ok(glob(pattern)?.into_iter().map(Dynamic::from).collect())
    });
    engine.register_fn("file_info", file_info);
}

/// `file_info(path)`: `#{ size, modified, is_dir, is_file }` (`modified` in seconds since
/// the Unix epoch, with fractions), or `()` when nothing is there. A path it may not look
/// at (under a directory it cannot search) is an error naming it: something may be there.
fn file_info(path: &str) -> R<Dynamic> {
    let m = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if nothing_there(&e) => return Ok(Dynamic::UNIT),
        Err(e) => {
            let at = crate::paths::in_cwd(Path::new(path));
            return Err(format!("file_info: cannot look at {path:?}{at}: {e}").into());
        }
    };
    let modified = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let mut info = rhai::Map::new();
    info.insert("size".into(), Dynamic::from(m.len() as i64));
    info.insert("modified".into(), Dynamic::from(modified));
    info.insert("is_dir".into(), m.is_dir().into());
    info.insert("is_file".into(), m.is_file().into());
    Ok(info.into())
}

/// True when `stat` failed because no file is at the path: nothing by that name
/// (a dangling symbolic link too), or a part of it that is a file, not a directory.
fn nothing_there(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

/// `read_file(path)`: the text (UTF-8) of a regular file. Anything else is an error naming what
/// it is: a FIFO or a terminal would block the script until a writer came (and Ctrl-C
/// cannot interrupt a read), a device like `/dev/zero` never ends.
fn read_file(path: &str) -> R<String> {
    use std::io::Read;
    let fail = |e: std::io::Error| {
        let at = crate::paths::in_cwd(Path::new(path));
        format!("read_file: cannot read {path:?}{at}: {e}")
    };
    let mut file = open_nonblocking(OpenOptions::new().read(true), path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(format!("read_file: {path:?} is {}, not a regular file", kind(&meta)).into());
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(fail)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let byte = e.as_bytes()[at];
        let cwd = crate::paths::in_cwd(Path::new(path));
        format!(
            "read_file: {path:?}{cwd} is not UTF-8 text: byte {} is {byte:#04x}",
            at + 1
        )
        .into()
    })
}

/// Opens `path` without blocking on a FIFO (no writer, or no reader), then puts the file
/// back in blocking mode.
fn open_nonblocking(opts: &mut OpenOptions, path: &str) -> std::io::Result<fs::File> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::os::unix::fs::OpenOptionsExt;
    let file = opts.custom_flags(OFlag::O_NONBLOCK.bits()).open(path)?;
    let flags = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
    fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(file)
}

/// What a file that is not a regular file is, for messages.
fn kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}

/// Writes or appends `text` to `path`. A FIFO or socket is an error (a FIFO without a
/// reader would block the script for good); devices such as `/dev/null` are written. A
/// symbolic link is followed only when it belongs to the user or to root
/// ([`crate::paths::trusted_write_target`]): root's script writing `/tmp/x/out.txt` must
/// not write `/etc/shadow` because another user planted `out.txt -> /etc/shadow`. Nor is a
/// file another user made in `/tmp` written
/// ([`crate::paths::not_planted_in_a_shared_directory`]).
fn write(func: &str, path: &str, text: &str, append: bool) -> R<()> {
    use std::os::unix::fs::FileTypeExt;
    let fail = |e: std::io::Error| {
        let at = crate::paths::in_cwd(Path::new(path));
        format!("{func}: cannot write {path:?}{at}: {e}")
    };
    let refuse = |meta: &fs::Metadata| -> R<()> {
        if meta.file_type().is_fifo() || meta.file_type().is_socket() {
            return Err(format!("{func}: {path:?} is {}, not a regular file", kind(meta)).into());
        }
        Ok(())
    };
    let target = crate::paths::trusted_write_target(std::path::Path::new(path)).map_err(fail)?;
    if let Ok(meta) = fs::metadata(&target) {
        refuse(&meta)?;
    }
    let mut file = crate::paths::open_write_target(
        &target,
        OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append),
    )
    .map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    refuse(&meta)?;
    crate::paths::not_planted_in_a_shared_directory(&target, &meta).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(|e| fail(e).into())
}

/// The paths matching `pattern`, sorted. A name that a Rhai string cannot hold (not UTF-8)
/// is an error naming it, never a file quietly left out; so is a directory the walk cannot
/// read (permission denied), whose files would be.
fn glob(pattern: &str) -> R<Vec<String>> {
    let hits = crate::exec::fileglob::expand(pattern, false).map_err(|e| match e {
        GlobError::Pattern(e) => format!(
            "glob: invalid pattern {pattern:?}: {} at position {}",
            e.msg, e.pos
        ),
        GlobError::Unreadable(e) => format!("glob: {pattern:?}: {e}"),
    })?;
    hits.into_iter()
        .map(|p| {
            p.into_os_string().into_string().map_err(|p| {
                format!(
                    "glob: {pattern:?} matched \"{}\", whose name is not UTF-8: a script string cannot hold it (rename the file)",
                    crate::exec::fileglob::display(std::path::Path::new(&p))
                )
                .into()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_is_sorted_recursive_and_skips_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "b.txt",
            "a.txt",
            ".hidden.txt",
            "sub/c.txt",
            "sub/deep/a.txt",
            ".git/x.txt",
            "x.md",
        ] {
            let p = d.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
        let base = d.to_string_lossy();
        let rel = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|p| p.strip_prefix(&format!("{base}/")).unwrap().to_string())
                .collect()
        };
        assert_eq!(
            rel(glob(&format!("{base}/*.txt")).unwrap()),
            ["a.txt", "b.txt"]
        );
        assert_eq!(
            rel(glob(&format!("{base}/**/*.txt")).unwrap()),
            ["a.txt", "b.txt", "sub/c.txt", "sub/deep/a.txt"]
        );
        assert_eq!(
            rel(glob(&format!("{base}/.*.txt")).unwrap()),
            [".hidden.txt"]
        );
        assert_eq!(
            rel(glob(&format!("{base}/sub/../*.txt")).unwrap()),
            ["sub/../a.txt", "sub/../b.txt"]
        );
        assert_eq!(
            rel(glob(&format!("{base}/./s*/c.txt")).unwrap()),
            ["./sub/c.txt"]
        );
        assert!(glob(&format!("{base}/*.none")).unwrap().is_empty());
    }

    #[test]
    fn invalid_glob_names_the_pattern() {
        let e = glob("a**b").unwrap_err().to_string();
        assert!(e.contains(r#"invalid pattern "a**b""#), "{e}");
    }

    #[test]
    fn write_append_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        let p = p.to_str().unwrap();
        write("write_file", p, "one\n", false).unwrap();
        write("append_file", p, "two\n", true).unwrap();
        assert_eq!(fs::read_to_string(p).unwrap(), "one\ntwo\n");
        write("write_file", p, "new", false).unwrap();
        assert_eq!(fs::read_to_string(p).unwrap(), "new");
        let missing = dir.path().join("no/such/dir/f.txt");
        let e = write("write_file", missing.to_str().unwrap(), "x", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("write_file: cannot write") && e.contains("no/such/dir"),
            "{e}"
        );
    }
}
