//! The one text analyzer used for indexing, querying and fact checks, so a
//! word means the same thing everywhere.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

pub const ANALYZER_NAME: &str = "frontdesk_en";

/// Builds the analyzer; cheap enough to build per use.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            crate::language::words()
                .analyzer
                .stop_words
                .iter()
                .map(str::to_owned),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Turns text into stemmed content terms.
#[derive(Clone)]
pub struct Analyzer {
    inner: TextAnalyzer,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer { inner: analyzer() }
    }
}

impl Analyzer {
    pub fn terms(&mut self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stream = self.inner.token_stream(text);
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// Distinct terms, in first-seen order, each with the word it came
    /// from as written (lowercased): what a person reads for a stem.
    pub fn terms_with_words(&mut self, text: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut stream = self.inner.token_stream(text);
        while stream.advance() {
            let token = stream.token();
            if !out.iter().any(|(term, _)| *term == token.text) {
                let word = text[token.offset_from..token.offset_to].to_lowercase();
                out.push((token.text.clone(), word));
            }
        }
        out
    }

    /// Distinct terms, in first-seen order.
    pub fn distinct_terms(&mut self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.terms(text) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_fillers_are_dropped_and_words_stemmed() {
        let mut a = Analyzer::default();
        assert_eq!(
            a.terms("How long do I have to return something?"),
            vec!["return"]
        );
        assert_eq!(a.terms("Refunds refunded"), vec!["refund", "refund"]);
        assert_eq!(
            a.terms("What's the capital of France?"),
            vec!["capit", "franc"]
        );
    }
}
