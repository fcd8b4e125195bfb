//! Errors of the script layer.

use thiserror::Error;

/// The script could not be read, compiled or run.
#[derive(Debug, Error)]
pub(crate) enum ScriptError {
    /// `hint`: the nearest scripts when the path names no file (`; did you mean ...?`).
    #[error("failed to read {path}: {source}{hint}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    /// A syntax error at a known place.
    #[error("{origin}: syntax error: {message}")]
    Syntax {
        origin: crate::diag::Origin,
        message: String,
    },
    /// A runtime error at the top level, already formatted with `path:line:col`.
    #[error("{0}")]
    Runtime(String),
}
