//! Whether the kernel starts a file itself, asked before a command with a working
//! directory is started. Such a command is started by the standard library (see
//! `spawn::spawn_by_std`), whose `execvp` runs a file the kernel refuses (`ENOEXEC`:
//! neither a binary nor a `#!` script) with `/bin/sh`, where `posix_spawn`, which starts
//! every other command, fails. The same file then ran or failed depending on whether its
//! proc had a `cwd`; asked first, it fails in both.
//!
//! The kernel starts an ELF file, a `#!` script, and a file that an enabled format of
//! `binfmt_misc` (`/proc/sys/fs/binfmt_misc`) matches by its magic bytes or its name's
//! extension. A file that cannot be read is left to the kernel (execute permission
//! without read permission is enough for a binary).

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;

/// Where `binfmt_misc` lists its formats.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// How much of a file the kernel reads to recognise it (`BINPRM_BUF_SIZE`).
const HEAD: usize = 256;

/// False when the kernel would refuse to start `file` (`ENOEXEC`): its first bytes are
/// neither ELF's nor `#!`, and no enabled `binfmt_misc` format matches it. True when it
/// cannot be read.
pub(crate) fn kernel_starts(file: &Path) -> bool {
    let mut head = Vec::with_capacity(HEAD);
    let read = std::fs::File::open(file).and_then(|f| f.take(HEAD as u64).read_to_end(&mut head));
    if read.is_err() || head.starts_with(b"#!") || head.starts_with(b"\x7fELF") {
        return true;
    }
    let name = file.file_name().unwrap_or_default();
    misc_formats().iter().any(|f| f.matches(name, &head))
}

/// The enabled formats of `binfmt_misc`; none when it is not mounted or disabled.
fn misc_formats() -> Vec<Format> {
    let dir = Path::new(BINFMT_MISC);
    let enabled = std::fs::read_to_string(dir.join("status")).is_ok_and(|s| s.trim() == "enabled");
    let Some(entries) = std::fs::read_dir(dir).ok().filter(|_| enabled) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| !matches!(e.file_name().to_str(), Some("register" | "status")))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| Format::parse(&text))
        .collect()
}

/// What an enabled `binfmt_misc` format recognises.
#[derive(Debug, PartialEq)]
enum Format {
    /// Bytes at an offset, compared under a mask (all ones when none is given).
    Magic {
        offset: usize,
        magic: Vec<u8>,
        mask: Option<Vec<u8>>,
    },
    /// The extension of the file's name, without its dot.
    Extension(String),
}

impl Format {
    /// The format a `binfmt_misc` entry describes (`enabled`, `interpreter ...`,
    /// `offset N`, `magic HEX`, `mask HEX`, or `extension .EXT`); `None` when it is
    /// disabled or not understood.
    fn parse(text: &str) -> Option<Format> {
        let mut lines = text.lines();
        if lines.next()?.trim() != "enabled" {
            return None;
        }
        let (mut offset, mut magic, mut mask) = (0, None, None);
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "extension" => {
                    return Some(Format::Extension(value.trim_start_matches('.').into()));
                }
                "offset" => offset = value.trim().parse().ok()?,
                "magic" => magic = Some(hex(value.trim())?),
                "mask" => mask = Some(hex(value.trim())?),
                _ => {}
            }
        }
        Some(Format::Magic {
            offset,
            magic: magic?,
            mask,
        })
    }

    /// Whether a file named `name` whose first bytes are `head` is of this format.
    fn matches(&self, name: &OsStr, head: &[u8]) -> bool {
        match self {
            Format::Extension(ext) => Path::new(name)
                .extension()
                .is_some_and(|e| e == OsStr::new(ext)),
            Format::Magic {
                offset,
                magic,
                mask,
            } => head
                .get(*offset..offset + magic.len())
                .is_some_and(|bytes| {
                    bytes.iter().zip(magic).enumerate().all(|(i, (b, m))| {
                        let k = mask
                            .as_ref()
                            .and_then(|k| k.get(i))
                            .copied()
                            .unwrap_or(0xff);
                        b & k == m & k
                    })
                }),
        }
    }
}

/// The bytes a string of hexadecimal digit pairs gives; `None` when it is not one.
fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_and_scripts_with_a_shebang_line_start_and_plain_text_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        assert!(kernel_starts(&file("script", b"#!/bin/sh\necho hi\n")));
        assert!(kernel_starts(&file("elf", b"\x7fELF\x02\x01\x01")));
        // Unless a format of binfmt_misc takes text beginning with `echo`, which none of
        // the usual ones (Java, Python bytecode, Wine, QEMU) does.
        assert!(!kernel_starts(&file("plain", b"echo hi\n")));
        assert!(!kernel_starts(&file("empty", b"")));
        assert!(
            kernel_starts(&dir.path().join("missing")),
            "left to the kernel"
        );
    }

    #[test]
    fn a_binfmt_misc_entry_is_read_as_the_kernel_shows_it() {
        let jar = "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n";
        assert_eq!(Format::parse(jar), Some(Format::Extension("jar".into())));
        let pyc =
            "enabled\ninterpreter /usr/bin/python3\nflags: \noffset 2\nmagic 0d0a\nmask ff0f\n";
        assert_eq!(
            Format::parse(pyc),
            Some(Format::Magic {
                offset: 2,
                magic: vec![0x0d, 0x0a],
                mask: Some(vec![0xff, 0x0f]),
            })
        );
        assert_eq!(Format::parse("disabled\nextension .jar\n"), None);
        assert_eq!(Format::parse("enabled\nmagic 0g\n"), None);
    }

    #[test]
    fn a_format_matches_by_its_magic_under_its_mask_or_by_the_extension() {
        let pyc = Format::Magic {
            offset: 2,
            magic: vec![0x0d, 0x0a],
            mask: Some(vec![0xff, 0x0f]),
        };
        assert!(pyc.matches(OsStr::new("a"), b"xx\x0d\xfa"));
        assert!(!pyc.matches(OsStr::new("a"), b"xx\x0e\x0a"));
        assert!(!pyc.matches(OsStr::new("a"), b"xx\x0d"), "too short");
        let jar = Format::Extension("jar".into());
        assert!(jar.matches(OsStr::new("app.jar"), b""));
        assert!(!jar.matches(OsStr::new("jar"), b""));
    }
}
