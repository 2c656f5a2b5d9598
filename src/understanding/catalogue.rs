//! The intent catalogue: data a shop edits in `knowledge/intents/*.yaml`,
//! one file per intent, not code.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The intent every message falls back to when nothing fits.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// What the bot does with a message of this intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentAction {
    /// Find the answer in the knowledge base (the default).
    Answer,
    /// Answer with the intent's fixed `reply`, without retrieval or the model.
    Reply,
    /// Offer a person and flag the conversation.
    Handoff,
    /// Decline politely: the shop's assistant does not answer this.
    Decline,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    pub name: String,
    pub description: String,
    #[serde(default = "default_action")]
    pub action: IntentAction,
    /// The fixed answer for `action: reply`.
    #[serde(default)]
    pub reply: Option<String>,
    /// Article tags retrieval prefers for this intent; the intent's own name
    /// is always one.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Said after an answer, the customer is done: the conversation closes
    /// as solved and the widget asks for a rating ("bye", "that's all").
    #[serde(default)]
    pub ends_conversation: bool,
    pub examples: Vec<String>,
}

fn default_action() -> IntentAction {
    IntentAction::Answer
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read intent catalogue {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("intent catalogue {dir} has {count} intents; it needs at least two")]
    TooSmall { dir: PathBuf, count: usize },
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    pub intents: Vec<IntentSpec>,
    /// Hash of every file's content: the trained model's cache key.
    pub digest: String,
}

impl Catalogue {
    pub fn load_dir(dir: &Path) -> Result<Self, CatalogueError> {
        let io = |source| CatalogueError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let paths = yaml_files(dir).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut intents: Vec<IntentSpec> = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogueError::Io {
                path: path.clone(),
                source,
            })?;
            hasher.update(path.file_name().unwrap_or_default().as_encoded_bytes());
            hasher.update(text.as_bytes());
            let invalid = |message: String| CatalogueError::Invalid {
                path: path.clone(),
                message,
            };
            let spec: IntentSpec =
                serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            validate(&spec).map_err(invalid)?;
            if intents.iter().any(|i| i.name == spec.name) {
                return Err(invalid(format!("intent `{}` is defined twice", spec.name)));
            }
            intents.push(spec);
        }
        if intents.len() < 2 {
            return Err(CatalogueError::TooSmall {
                dir: dir.to_path_buf(),
                count: intents.len(),
            });
        }
        Ok(Self {
            intents,
            digest: hex::encode(&hasher.finalize()[..12]),
        })
    }

    pub fn get(&self, name: &str) -> Option<&IntentSpec> {
        self.intents.iter().find(|i| i.name == name)
    }

    /// The fixed replies of `action: reply` intents.
    pub fn replies(&self) -> impl Iterator<Item = &str> {
        self.intents.iter().filter_map(|i| i.reply.as_deref())
    }

    /// Every example with its intent's name, the classifier's training set.
    pub fn training_set(&self) -> (Vec<&str>, Vec<String>) {
        self.intents
            .iter()
            .flat_map(|i| i.examples.iter().map(move |e| (e.as_str(), i.name.clone())))
            .unzip()
    }
}

/// The `.yaml`/`.yml` files of a folder, in name order so digests are
/// stable.
pub(crate) fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    Ok(paths)
}

fn validate(spec: &IntentSpec) -> Result<(), String> {
    let name_ok = !spec.name.is_empty()
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(format!(
            "intent name `{}` must be lowercase letters, digits and `_`",
            spec.name
        ));
    }
    if spec
        .examples
        .iter()
        .filter(|e| !e.trim().is_empty())
        .count()
        < 2
    {
        return Err(format!(
            "intent `{}` needs at least two examples",
            spec.name
        ));
    }
    if spec.action == IntentAction::Reply
        && spec.reply.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(format!(
            "intent `{}` has `action: reply` but no `reply` text",
            spec.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn the_shipped_catalogue_loads_with_the_required_intents() {
        let catalogue = Catalogue::load_dir(Path::new("knowledge/intents")).unwrap();
        for name in [
            "cancel_order",
            "track_refund",
            "greeting",
            "thanks",
            "goodbye",
            OUT_OF_SCOPE,
        ] {
            let intent = catalogue
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(intent.examples.len() >= 25, "{name} has too few examples");
        }
        assert!(catalogue.intents.len() >= 31);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::TempDir::new().unwrap();
        write(
            dir.path(),
            "a.yaml",
            "name: a\ndescription: x\nexamples: [one, two]\n",
        );
        write(
            dir.path(),
            "b.yaml",
            "name: b\ndescription: x\naction: reply\nexamples: [one, two]\n",
        );
        let err = Catalogue::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("b.yaml") && err.contains("no `reply` text"),
            "{err}"
        );
        write(
            dir.path(),
            "b.yaml",
            "name: a\ndescription: x\nexamples: [one, two]\n",
        );
        let err = Catalogue::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("defined twice"), "{err}");
        write(
            dir.path(),
            "b.yaml",
            "name: b\ndescription: x\nexampels: [one]\n",
        );
        let err = Catalogue::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b.yaml") && err.contains("exampels"), "{err}");
    }

    #[test]
    fn the_digest_follows_the_content() {
        let dir = tempfile::TempDir::new().unwrap();
        write(
            dir.path(),
            "a.yaml",
            "name: a\ndescription: x\nexamples: [one, two]\n",
        );
        write(
            dir.path(),
            "b.yaml",
            "name: b\ndescription: x\nexamples: [three, four]\n",
        );
        let first = Catalogue::load_dir(dir.path()).unwrap().digest;
        write(
            dir.path(),
            "b.yaml",
            "name: b\ndescription: x\nexamples: [three, five]\n",
        );
        assert_ne!(first, Catalogue::load_dir(dir.path()).unwrap().digest);
    }
}
