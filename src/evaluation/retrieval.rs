//! `frontdesk eval retrieval`: ranking quality and latency of the retrievers
//! on a labelled FAQ set, and how the answerability rule behaves on it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::understanding::{EvalError, percentiles, read_pairs};
use crate::knowledge::dense::EmbeddingCache;
use crate::knowledge::import::{ImportFile, parse_file};
use crate::knowledge::retriever::{
    Answerability, Corpus, RetrievalError, RetrieverKind, article_ranking,
};
use crate::knowledge::{Article, RetrievalQuery};
use crate::understanding::encoder::{Encoder, EncoderError};

#[derive(Debug, thiserror::Error)]
pub enum RetrievalEvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{place}: {message}")]
    Article { place: String, message: String },
    #[error(transparent)]
    Queries(#[from] EvalError),
    #[error("{path}, line {line}: unknown doc_id `{id}`")]
    UnknownDoc {
        path: PathBuf,
        line: u64,
        id: String,
    },
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
}

#[derive(Debug, Serialize)]
pub struct RetrievalReport {
    pub retriever: RetrieverKind,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mrr: f64,
    pub ndcg_at_10: f64,
    pub n: usize,
    /// Per query: embedding the question (hybrid and dense) and searching.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The search alone, as in chat, where the question's embedding is
    /// already made for the intent model.
    pub search_p50_ms: f64,
    pub search_p99_ms: f64,
    pub articles: usize,
    pub passages: usize,
    pub index_seconds: f64,
    /// How the answerability rule behaves (hybrid and dense only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answerability: Vec<ThresholdPoint>,
}

/// One point of the answerability curve. Answerable: the question against
/// the whole KB. Unanswerable: the same question with its article taken
/// out, the best remaining passage judged instead.
#[derive(Debug, Serialize)]
pub struct ThresholdPoint {
    pub min_similarity: f64,
    pub min_relevance: f64,
    /// Share of questions answered, from the right article.
    pub answered_correctly: f64,
    /// Share of unanswerable questions answered anyway.
    pub answered_wrongly: f64,
}

/// (similarity, relevance) of the best passage, with the question's own
/// article and without it, and whether the best was right.
struct Judged {
    right_top: bool,
    with: (f32, f32),
    without: (f32, f32),
}

fn curve(judged: &[Judged], min_relevance: f32) -> Vec<ThresholdPoint> {
    let n = judged.len().max(1) as f64;
    (8..=16)
        .map(|i| i as f32 * 0.05)
        .flat_map(|t| {
            // With the words path, and similarity alone.
            [min_relevance, 1.01].map(|min_rel| {
                let rule = Answerability {
                    min_relevance: min_rel,
                    min_similarity: t,
                };
                let share = |f: &dyn Fn(&Judged) -> bool| {
                    (judged.iter().filter(|j| f(j)).count() as f64 / n * 1e4).round() / 1e4
                };
                ThresholdPoint {
                    min_similarity: f64::from((t * 100.0).round()) / 100.0,
                    min_relevance: f64::from((min_rel.min(1.0) * 100.0).round()) / 100.0,
                    answered_correctly: share(&|j| j.right_top && rule.passes(j.with.0, j.with.1)),
                    answered_wrongly: share(&|j| rule.passes(j.without.0, j.without.1)),
                }
            })
        })
        .collect()
}

/// Reads a JSON-lines knowledge base; any bad line fails the whole file.
pub fn read_kb(path: &Path) -> Result<Vec<Article>, RetrievalEvalError> {
    let content = std::fs::read_to_string(path).map_err(|source| RetrievalEvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = ImportFile {
        name: path.display().to_string(),
        content,
    };
    parse_file(&file)
        .into_iter()
        .map(|item| {
            item.article.map_err(|message| RetrievalEvalError::Article {
                place: item.source,
                message,
            })
        })
        .collect()
}

/// Indexes `kb` in memory, runs every query of the `query,doc_id` CSV and
/// scores the article ranking.
pub fn retrieval(
    encoder: &Encoder,
    kb: &Path,
    queries: &Path,
    kind: RetrieverKind,
    min_relevance: f32,
) -> Result<RetrievalReport, RetrievalEvalError> {
    let articles = read_kb(kb)?;
    let rows = read_pairs(queries, ["query", "doc_id"])?;
    for row in &rows {
        if !articles.iter().any(|a| a.id == row.label) {
            return Err(RetrievalEvalError::UnknownDoc {
                path: queries.to_path_buf(),
                line: row.line,
                id: row.label.clone(),
            });
        }
    }
    let started = Instant::now();
    let corpus = Corpus::build(articles, encoder, &mut EmbeddingCache::in_memory(encoder))?;
    let index_seconds = started.elapsed().as_secs_f64();

    let (mut r1, mut r5, mut mrr, mut ndcg) = (0.0, 0.0, 0.0, 0.0);
    let mut times = Vec::with_capacity(rows.len());
    let mut search_times = Vec::with_capacity(rows.len());
    let mut misses = Vec::new();
    let mut judged = Vec::new();
    for row in &rows {
        let started = Instant::now();
        let embedding = match kind {
            RetrieverKind::Bm25 => None,
            _ => Some(encoder.embed(&[row.text.as_str()])?.remove(0)),
        };
        let query = RetrievalQuery {
            text: row.text.clone(),
            ..Default::default()
        };
        let searching = Instant::now();
        let hits = corpus.search(&query, embedding.as_deref(), kind, 30)?;
        search_times.push(searching.elapsed().as_secs_f64() * 1000.0);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let ranking = article_ranking(&hits);
        let best = |keep: &dyn Fn(&str) -> bool| {
            hits.iter()
                .find(|h| keep(&h.passage.article_id))
                .map_or((0.0, 0.0), |h| (h.similarity, h.relevance))
        };
        judged.push(Judged {
            right_top: ranking.first() == Some(&row.label.as_str()),
            with: best(&|_| true),
            without: best(&|id| id != row.label),
        });
        match ranking.iter().position(|id| *id == row.label) {
            Some(i) => {
                let rank = i + 1;
                r1 += f64::from(rank == 1);
                r5 += f64::from(rank <= 5);
                mrr += 1.0 / rank as f64;
                if rank <= 10 {
                    ndcg += 1.0 / (rank as f64 + 1.0).log2();
                }
                if rank > 1 {
                    misses.push((row, ranking.first().map(|s| s.to_string()), Some(rank)));
                }
            }
            None => misses.push((row, ranking.first().map(|s| s.to_string()), None)),
        }
    }
    if std::env::var_os("FRONTDESK_EVAL_ERRORS").is_some() {
        for (row, top, rank) in &misses {
            eprintln!(
                "line {}: {:?} wants {} (rank {:?}), got {}",
                row.line,
                row.text,
                row.label,
                rank,
                top.as_deref().unwrap_or("nothing")
            );
        }
    }
    let n = rows.len().max(1) as f64;
    let (p50, p99) = percentiles(times);
    let (search_p50, search_p99) = percentiles(search_times);
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    Ok(RetrievalReport {
        retriever: kind,
        recall_at_1: round(r1 / n),
        recall_at_5: round(r5 / n),
        mrr: round(mrr / n),
        ndcg_at_10: round(ndcg / n),
        n: rows.len(),
        p50_ms: round(p50),
        p99_ms: round(p99),
        search_p50_ms: round(search_p50),
        search_p99_ms: round(search_p99),
        articles: corpus.article_count(),
        passages: corpus.passage_count(),
        index_seconds: round(index_seconds),
        answerability: if kind == RetrieverKind::Bm25 {
            Vec::new()
        } else {
            curve(&judged, min_relevance)
        },
    })
}
