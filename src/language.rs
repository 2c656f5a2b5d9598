//! The words of a language that Frontdesk's rules read (stop words, what a
//! yes looks like, which wordings ask for a person): data a shop may
//! reword, `language/en.yaml` in the knowledge folder, or the shipped one
//! when the folder has none. The seam a second language will use.
//!
//! Read once, at start, for the whole process: the rules that use these
//! words are pure functions deep in the pipeline (the analyzer, the
//! grounding check, the dialogue), like the model they serve the whole
//! server, and threading the lists through every call would change every
//! signature for no gain. Until `install` runs (unit tests, commands that
//! need no knowledge folder) the shipped file applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

const SHIPPED: &str = include_str!("../knowledge/language/en.yaml");

/// Where a knowledge folder keeps its language file.
pub const FILE: &str = "language/en.yaml";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    pub analyzer: AnalyzerWords,
    pub grounding: GroundingWords,
    pub understanding: UnderstandingWords,
    pub dialogue: DialogueWords,
    pub questions: QuestionWords,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzerWords {
    pub stop_words: Words,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundingWords {
    /// Number words and their digits.
    pub number_words: BTreeMap<String, String>,
    pub common_capitals: Words,
    pub negations: Words,
    pub durations: Words,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderstandingWords {
    pub contrasts: Words,
    pub question_words: Words,
    pub request_cues: Words,
    pub signals: SignalPatterns,
}

/// Regular expressions (case-insensitive, whole words) of the escalation
/// signals.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalPatterns {
    pub profanity: String,
    pub anger: String,
    pub repeated_failure: String,
    pub cancel_threat: String,
    pub human_request: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogueWords {
    pub yes: Words,
    pub no: Words,
    pub all: Words,
    pub first: Words,
    pub second: Words,
    pub not_postcode_letters: Words,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionWords {
    pub question_words: Words,
    pub yes_no_starts: Words,
    pub about_words: Words,
    pub asking_for_one: Words,
    pub continuations: Words,
    pub anaphora: Words,
}

/// A list of words or phrases, as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Words(Vec<String>);

impl Words {
    pub fn contains(&self, word: &str) -> bool {
        self.0.iter().any(|w| w == word)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LanguageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{path} differs from the language this process already uses (one language file per process)"
    )]
    Conflict { path: PathBuf },
}

static INSTALLED: OnceLock<Language> = OnceLock::new();

/// The language in use.
pub fn words() -> &'static Language {
    INSTALLED.get_or_init(shipped)
}

fn shipped() -> Language {
    serde_yaml_ng::from_str(SHIPPED).expect("the shipped language file parses (tested)")
}

/// Reads `knowledge/language/en.yaml` (or takes the shipped one) and makes
/// it the process's language; before anything reads it, at start.
pub fn install(knowledge: &Path) -> Result<(), LanguageError> {
    let path = knowledge.join(FILE);
    let language = match std::fs::read_to_string(&path) {
        Ok(text) => serde_yaml_ng::from_str(&text).map_err(|e| LanguageError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => shipped(),
        Err(source) => return Err(LanguageError::Read { path, source }),
    };
    if *INSTALLED.get_or_init(|| language.clone()) != language {
        return Err(LanguageError::Conflict { path });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_and_a_bad_one_says_where() {
        let language = shipped();
        assert!(language.dialogue.yes.contains("yes"));
        assert!(language.dialogue.no.contains("no"));
        assert_eq!(language.grounding.number_words["five"], "5");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("language")).unwrap();
        std::fs::write(dir.path().join(FILE), "analyzer: {stop_words: [a]}\n").unwrap();
        let err = install(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("en.yaml") && err.contains("grounding"),
            "{err}"
        );
    }
}
