//! Hybrid retrieval over one snapshot of the knowledge base: BM25 from
//! tantivy and dense similarity from the sentence encoder, fused by
//! weighted reciprocal rank, with an answerability rule on the best passage.

use std::collections::HashMap;

use serde::Serialize;

use super::dense::{DenseIndex, EmbeddingCache, embedding_text};
use super::index::{KbIndex, KbIndexError, RetrievalQuery, passage_terms};
use super::spelling::Vocabulary;
use super::{Analyzer, Article, Passage};
use crate::understanding::encoder::{Encoder, EncoderError};

/// Reciprocal-rank-fusion constant: how quickly credit falls with rank.
const RRF_K: f32 = 60.0;
/// Weight of each retriever in the fusion. On StackFAQ dev, NDCG@10 goes
/// 0.947 (1:1), 0.961 (1:2), 0.967 (1:3); dense alone scores 0.974 there,
/// but the encoder was trained on StackExchange titles, and shop articles
/// hang on exact words (product names, numbers) that BM25 catches, so BM25
/// keeps a real say.
const BM25_WEIGHT: f32 = 1.0;
const DENSE_WEIGHT: f32 = 2.0;
/// Two questions look alike for their form alone ("Can I pay with X?" and
/// "Can I pay with Y?"), so a match through an example question counts
/// for this much less than one through the article's own text.
const QUESTION_FORM_DISCOUNT: f32 = 0.15;
/// Candidates taken from each retriever before fusing.
const CANDIDATES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error(transparent)]
    Index(#[from] KbIndexError),
    #[error("cannot embed the knowledge base: {0}")]
    Encoder(#[from] EncoderError),
}

/// Which retrievers rank the passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RetrieverKind {
    #[default]
    Hybrid,
    Bm25,
    Dense,
}

/// A retriever's score for a passage and the passage's rank in its list (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scored {
    pub score: f32,
    pub rank: usize,
}

/// A passage found for a question, with every retriever's view of it.
#[derive(Debug, Clone, Serialize)]
pub struct Retrieved {
    #[serde(flatten)]
    pub passage: Passage,
    pub bm25: Option<Scored>,
    pub dense: Option<Scored>,
    /// The fused score the ranking follows; comparable only within one query.
    pub fused: f32,
    /// Share of the question's content words in the passage, weighted by rarity (0..1).
    pub relevance: f32,
    /// Cosine similarity of question and passage embeddings (-1..1).
    pub similarity: f32,
}

/// Word overlap alone is not enough: a passage that holds the question's
/// words must also be at least loosely about the same thing. On StackFAQ
/// (questions asked with their own article removed) overlap without this
/// floor answered 40% of unanswerable questions.
pub const WORDS_MIN_SIMILARITY: f32 = 0.35;

/// When a passage is good enough to answer from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Answerability {
    pub min_relevance: f32,
    pub min_similarity: f32,
}

impl Answerability {
    /// The rule as the settings give it.
    pub fn from_config(config: &crate::config::Config) -> Answerability {
        Answerability {
            min_relevance: config.min_relevance,
            min_similarity: config.min_similarity,
        }
    }

    /// A passage answers when it clearly means the same thing as the
    /// question, or holds the question's words and is about the same topic.
    pub fn passes(&self, similarity: f32, relevance: f32) -> bool {
        similarity >= self.min_similarity
            || (relevance >= self.min_relevance && similarity >= WORDS_MIN_SIMILARITY)
    }
}

impl Retrieved {
    pub fn answers(&self, rule: &Answerability) -> bool {
        rule.passes(self.similarity, self.relevance)
    }
}

/// One immutable snapshot of the active articles, searchable both ways.
pub struct Corpus {
    articles: HashMap<String, Article>,
    passages: Vec<Passage>,
    position: HashMap<String, usize>,
    /// Each passage's distinct terms, for judging relevance cheaply.
    terms: Vec<std::collections::HashSet<String>>,
    bm25: KbIndex,
    /// One vector per passage, then one per example question.
    dense: DenseIndex,
    /// The passage each example question's vector belongs to, in order.
    question_owner: Vec<usize>,
    /// The words the articles use, for correcting typos in questions.
    vocabulary: Vocabulary,
    /// Every term of every passage, for telling what no article mentions.
    known_terms: std::collections::HashSet<String>,
}

impl Corpus {
    /// Indexes `articles`, embedding only passages the cache has not seen.
    /// Blocking and CPU-heavy.
    pub fn build(
        articles: Vec<Article>,
        encoder: &Encoder,
        cache: &mut EmbeddingCache,
    ) -> Result<Corpus, RetrievalError> {
        let passages: Vec<Passage> = articles.iter().flat_map(Article::passages).collect();
        let bm25 = KbIndex::build(&passages)?;
        let mut texts: Vec<String> = passages.iter().map(embedding_text).collect();
        // A passage is as close to a question as its closest wording: its
        // own text, or one of the questions staff say it answers.
        let mut question_owner = Vec::new();
        for (i, p) in passages.iter().enumerate() {
            for q in &p.questions {
                texts.push(q.clone());
                question_owner.push(i);
            }
        }
        let embeddings = cache.embed(encoder, &texts)?;
        cache.retain_and_save(&texts);
        let mut analyzer = Analyzer::default();
        let vocabulary = Vocabulary::from_texts(texts.iter().map(String::as_str));
        let terms: Vec<std::collections::HashSet<String>> = passages
            .iter()
            .map(|p| passage_terms(p, &mut analyzer))
            .collect();
        Ok(Corpus {
            vocabulary,
            known_terms: terms.iter().flatten().cloned().collect(),
            terms,
            position: passages
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id.clone(), i))
                .collect(),
            passages,
            articles: articles.into_iter().map(|a| (a.id.clone(), a)).collect(),
            bm25,
            dense: DenseIndex::new(encoder.dim(), &embeddings),
            question_owner,
        })
    }

    /// `text` with its typos corrected to words the articles use, if it had any.
    /// Words the encoder knows whole are taken as spelt right.
    pub fn correct_spelling(&self, text: &str, encoder: &Encoder) -> Option<String> {
        self.vocabulary.correct(text, |w| encoder.knows_word(w))
    }

    /// The words of `text` that no article uses (stop words aside, compared
    /// stemmed): "bitcoin" in "can I pay with bitcoin?".
    pub fn unknown_words<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut analyzer = Analyzer::default();
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| {
                let terms = analyzer.terms(w);
                !terms.is_empty() && terms.iter().all(|t| !self.known_terms.contains(t))
            })
            .collect()
    }

    pub fn article(&self, id: &str) -> Option<&Article> {
        self.articles.get(id)
    }

    pub fn article_count(&self) -> usize {
        self.articles.len()
    }

    pub fn passage_count(&self) -> usize {
        self.passages.len()
    }

    /// Each passage's similarity to a question embedding: the best of its
    /// own and its example questions'.
    fn passage_similarities(&self, embedding: &[f32]) -> Vec<f32> {
        let mut all = self.dense.similarities(embedding);
        let questions = all.split_off(self.passages.len());
        for (owner, sim) in self.question_owner.iter().zip(questions) {
            all[*owner] = all[*owner].max(sim - QUESTION_FORM_DISCOUNT);
        }
        all
    }

    /// Ranked passages for a question, best first. `embedding` is the
    /// question's sentence embedding (without it only BM25 ranks).
    /// CPU-bound: call it off the async executor.
    pub fn search(
        &self,
        query: &RetrievalQuery,
        embedding: Option<&[f32]>,
        kind: RetrieverKind,
        limit: usize,
    ) -> Result<Vec<Retrieved>, RetrievalError> {
        let embeddings: Vec<&[f32]> = embedding.into_iter().collect();
        self.search_any(query, &embeddings, kind, limit)
    }

    /// Like [`Corpus::search`], with a passage's similarity the best to any
    /// of `embeddings` (the question whole, and each of its sentences).
    pub fn search_any(
        &self,
        query: &RetrievalQuery,
        embeddings: &[&[f32]],
        kind: RetrieverKind,
        limit: usize,
    ) -> Result<Vec<Retrieved>, RetrievalError> {
        let use_bm25 = kind != RetrieverKind::Dense;
        let mut similarities: Vec<f32> = Vec::new();
        for e in embeddings {
            let these = self.passage_similarities(e);
            if similarities.is_empty() {
                similarities = these;
            } else {
                for (s, t) in similarities.iter_mut().zip(these) {
                    *s = s.max(t);
                }
            }
        }
        let use_dense = kind != RetrieverKind::Bm25 && !similarities.is_empty();

        let mut found: HashMap<usize, (Option<Scored>, Option<Scored>)> = HashMap::new();
        if use_bm25 {
            for (rank, hit) in self.bm25.search(query, CANDIDATES)?.into_iter().enumerate() {
                if let Some(&i) = self.position.get(&hit.passage.id) {
                    found.entry(i).or_default().0 = Some(Scored {
                        score: hit.score,
                        rank: rank + 1,
                    });
                }
            }
        }
        if use_dense {
            let mut order: Vec<usize> = (0..similarities.len()).collect();
            order.sort_by(|&a, &b| similarities[b].total_cmp(&similarities[a]));
            for (rank, &i) in order.iter().take(CANDIDATES).enumerate() {
                found.entry(i).or_default().1 = Some(Scored {
                    score: similarities[i],
                    rank: rank + 1,
                });
            }
        }

        let judge = self.bm25.judge(query)?;
        let mut hits: Vec<Retrieved> = found
            .into_iter()
            .map(|(i, (bm25, dense))| {
                let passage = self.passages[i].clone();
                Retrieved {
                    relevance: judge.relevance(&self.terms[i]),
                    similarity: similarities.get(i).copied().unwrap_or(0.0),
                    fused: fused_score(bm25, dense),
                    passage,
                    bm25,
                    dense,
                }
            })
            .collect();
        hits.sort_by(|a, b| {
            b.fused
                .total_cmp(&a.fused)
                .then_with(|| b.similarity.total_cmp(&a.similarity))
        });
        hits.truncate(limit);
        Ok(hits)
    }
}

/// Weighted reciprocal-rank fusion: each retriever that found the passage
/// adds its weight over (k + rank).
fn fused_score(bm25: Option<Scored>, dense: Option<Scored>) -> f32 {
    let rrf = |s: Option<Scored>, w: f32| s.map_or(0.0, |s| w / (RRF_K + s.rank as f32));
    rrf(bm25, BM25_WEIGHT) + rrf(dense, DENSE_WEIGHT)
}

/// Articles in the order their best passage ranks.
pub fn article_ranking(hits: &[Retrieved]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for hit in hits {
        if !out.contains(&hit.passage.article_id.as_str()) {
            out.push(&hit.passage.article_id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rank: usize) -> Option<Scored> {
        Some(Scored { score: 0.0, rank })
    }

    #[test]
    fn fusion_rewards_agreement_and_weighs_dense_double() {
        let both = fused_score(at(3), at(3));
        assert!(both > fused_score(at(1), None));
        assert!(both > fused_score(None, at(1)));
        assert!(fused_score(None, at(1)) > fused_score(at(1), None));
        assert!(fused_score(at(1), at(40)) > fused_score(at(2), at(40)));
        assert_eq!(fused_score(None, None), 0.0);
    }
}
