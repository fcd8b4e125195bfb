//! Where prun keeps per-script state: `$XDG_STATE_HOME/prun/<script>-<hash>/`, else
//! `~/.local/state/prun/<script>-<hash>/`.

use std::path::{Path, PathBuf};

/// The state directory of one script (not created).
pub fn script_state_dir(script: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(script).unwrap_or_else(|_| script.to_path_buf());
    let stem = abs
        .file_stem()
        .map_or_else(|| "script".into(), |s| s.to_string_lossy().into_owned());
    let key = format!(
        "{stem}-{:08x}",
        fnv1a(abs.as_os_str().as_encoded_bytes()) as u32
    );
    state_root().join(key)
}

fn state_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    if let Some(x) = xdg.filter(|p| p.is_absolute()) {
        return x.join("prun");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/prun"),
        None => std::env::temp_dir().join("prun-state"),
    }
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, it does not change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
