//! Reading a data file of the knowledge folder that a shop may leave out
//! (the shipped wording applies then): the replies and the places.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
}

/// The file's text, or `None` when the shop has none.
pub(super) fn read_optional(path: &Path) -> Result<Option<String>, TextsError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TextsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
