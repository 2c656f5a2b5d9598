//! The tantivy index over passages: BM25 over title, heading, tags and body
//! with English stemming, plus a relevance score that says whether the best
//! passage is about the question at all.

use std::collections::HashSet;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term, doc};

use super::Passage;
use super::analyzer::{ANALYZER_NAME, Analyzer, analyzer};

/// Weight of the previous customer turn's words. A message with few content
/// words of its own ("and how much does it cost?") leans on the previous turn more.
const CONTEXT_BOOST: f32 = 0.35;
const SHORT_FOLLOW_UP_CONTEXT_BOOST: f32 = 0.7;
/// A message with at most this many content words leans on the previous turn.
const SHORT_FOLLOW_UP_TERMS: usize = 2;
/// Score factor for passages tagged with the message's intent: enough to
/// settle near ties between sibling articles, not to beat a clear match.
const INTENT_BOOST: f32 = 1.3;
/// Question cues that say what kind of fact is wanted, with a word that
/// facts of that kind contain. They rank passages; they never count towards relevance.
const CUES: &[(&str, &str, f32)] = &[("how long", "day", 0.5), ("how many days", "day", 0.5)];

#[derive(Debug, thiserror::Error)]
pub enum KbIndexError {
    #[error("search index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

#[derive(Clone, Copy)]
struct Fields {
    passage_id: Field,
    article_id: Field,
    title: Field,
    heading: Field,
    heading_text: Field,
    tags: Field,
    body: Field,
    url: Field,
    all: Field,
}

impl Fields {
    /// Fields searched, with their weight.
    fn weighted(&self) -> [(Field, f32); 4] {
        [
            (self.title, 2.0),
            (self.heading, 1.5),
            (self.tags, 1.5),
            (self.body, 1.0),
        ]
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(ANALYZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let text_stored = TextOptions::default()
        .set_indexing_options(indexing.clone())
        .set_stored();
    let text = TextOptions::default().set_indexing_options(indexing);
    let fields = Fields {
        passage_id: b.add_text_field("passage_id", STRING | STORED),
        article_id: b.add_text_field("article_id", STRING | STORED),
        title: b.add_text_field("title", text_stored.clone()),
        heading: b.add_text_field("heading", text.clone()),
        heading_text: b.add_text_field("heading_text", STORED),
        tags: b.add_text_field("tags", text_stored.clone()),
        body: b.add_text_field("body", text_stored),
        url: b.add_text_field("url", STORED),
        all: b.add_text_field("all", text),
    };
    (b.build(), fields)
}

/// What a customer asked, with the previous customer turn for follow-ups.
#[derive(Debug, Clone, Default)]
pub struct RetrievalQuery {
    pub text: String,
    pub context: Option<String>,
    /// Article tags the message's intent points to; passages carrying one
    /// rank higher (the words still decide whether they are relevant).
    pub prefer_tags: Vec<String>,
}

impl RetrievalQuery {
    /// The terms that say what the question is about: its own content words,
    /// or, for a follow-up made only of filler ("and how long does that
    /// take?"), the previous turn's.
    pub fn subject_terms(&self, analyzer: &mut Analyzer) -> Vec<String> {
        let own = analyzer.distinct_terms(&self.text);
        if own.is_empty() {
            analyzer.distinct_terms(self.context.as_deref().unwrap_or_default())
        } else {
            own
        }
    }
}

/// A passage found for a query.
#[derive(Debug, Clone)]
pub struct Hit {
    pub passage: Passage,
    /// BM25 score with field weights; comparable only within one query.
    pub score: f32,
}

/// The question's subject terms with their weights.
#[derive(Debug, Clone)]
pub struct Judge {
    terms: Vec<String>,
    weights: Vec<f32>,
}

impl Judge {
    /// Share of the question's content words found in the passage, weighted
    /// by rarity (0..1). Comparable across queries.
    pub fn relevance(&self, passage_terms: &HashSet<String>) -> f32 {
        let total: f32 = self.weights.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        let matched: f32 = self
            .terms
            .iter()
            .zip(&self.weights)
            .filter(|(t, _)| passage_terms.contains(*t))
            // A fold from +0.0: `sum` starts at -0.0, which would show as "-0".
            .fold(0.0, |sum, (_, w)| sum + w);
        matched / total
    }
}

/// The distinct terms of everything a passage is indexed under.
pub fn passage_terms(passage: &Passage, analyzer: &mut Analyzer) -> HashSet<String> {
    analyzer
        .terms(&format!(
            "{} {} {} {} {}",
            passage.article_title,
            passage.heading,
            passage.tags.join(" "),
            passage.questions.join(" "),
            passage.text
        ))
        .into_iter()
        .collect()
}

pub struct KbIndex {
    reader: IndexReader,
    fields: Fields,
}

impl KbIndex {
    /// Builds the index in memory from the active articles' passages. It is derived
    /// from the store and rebuilt whole on every change: a few milliseconds
    /// per hundred articles, and never out of step with the store.
    pub fn build(passages: &[Passage]) -> Result<KbIndex, KbIndexError> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        index.tokenizers().register(ANALYZER_NAME, analyzer());
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;
        for p in passages {
            let tags = p.tags.join(", ");
            let questions = p.questions.join("\n");
            let all = format!(
                "{}\n{}\n{}\n{}\n{}",
                p.article_title, p.heading, tags, questions, p.text
            );
            // An article's intro states what the title promises, so it is
            // indexed under the title, with the questions staff say the
            // article answers; otherwise sections whose heading repeats a
            // question word outrank the intro that answers it.
            let heading = if p.heading.is_empty() {
                format!("{}\n{questions}", p.article_title)
            } else {
                p.heading.clone()
            };
            writer.add_document(doc!(
                fields.passage_id => p.id.as_str(),
                fields.article_id => p.article_id.as_str(),
                fields.title => p.article_title.as_str(),
                fields.heading => heading.as_str(),
                fields.heading_text => p.heading.as_str(),
                fields.tags => tags,
                fields.body => p.text.as_str(),
                fields.url => p.url.as_str(),
                fields.all => all,
            ))?;
        }
        writer.commit()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KbIndex { reader, fields })
    }

    /// Ranked passages for a question, best first. CPU-bound: call it off the
    /// async executor when the index is large.
    pub fn search(&self, query: &RetrievalQuery, limit: usize) -> Result<Vec<Hit>, KbIndexError> {
        let mut analyzer = Analyzer::default();
        let main_terms = analyzer.distinct_terms(&query.text);
        let context_terms: Vec<String> = query
            .context
            .as_deref()
            .map(|c| analyzer.distinct_terms(c))
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !main_terms.contains(t))
            .collect();
        let judged_terms = query.subject_terms(&mut analyzer);
        if judged_terms.is_empty() {
            return Ok(Vec::new());
        }
        let context_boost = if main_terms.len() <= SHORT_FOLLOW_UP_TERMS {
            SHORT_FOLLOW_UP_CONTEXT_BOOST
        } else {
            CONTEXT_BOOST
        };
        let lowered = query.text.to_lowercase();
        let cue_terms: Vec<(Vec<String>, f32)> = CUES
            .iter()
            .filter(|(cue, _, _)| lowered.contains(cue))
            .map(|(_, word, weight)| (analyzer.terms(word), *weight))
            .collect();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let weighted_terms = [
            (main_terms.as_slice(), 1.0),
            (context_terms.as_slice(), context_boost),
        ]
        .into_iter()
        .chain(cue_terms.iter().map(|(terms, w)| (terms.as_slice(), *w)));
        for (terms, weight) in weighted_terms {
            for term in terms {
                for (field, boost) in self.fields.weighted() {
                    let q = TermQuery::new(
                        Term::from_field_text(field, term),
                        IndexRecordOption::WithFreqs,
                    );
                    clauses.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(q), boost * weight)),
                    ));
                }
            }
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit.max(1)).order_by_score(),
        )?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let passage = self.passage_from(&doc);
            let preferred = passage.tags.iter().any(|t| query.prefer_tags.contains(t));
            hits.push(Hit {
                passage,
                score: if preferred {
                    score * INTENT_BOOST
                } else {
                    score
                },
            });
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }

    /// Weighs the question's subject terms by their rarity in the knowledge
    /// base, to judge any passage's relevance to it.
    pub fn judge(&self, query: &RetrievalQuery) -> Result<Judge, KbIndexError> {
        let mut analyzer = Analyzer::default();
        let terms = query.subject_terms(&mut analyzer);
        let searcher = self.reader.searcher();
        let n_docs = searcher.num_docs() as f32;
        let weights = terms
            .iter()
            .map(|t| {
                let df = searcher.doc_freq(&Term::from_field_text(self.fields.all, t))? as f32;
                Ok((1.0 + (n_docs - df + 0.5) / (df + 0.5)).ln())
            })
            .collect::<tantivy::Result<Vec<f32>>>()?;
        Ok(Judge { terms, weights })
    }

    fn passage_from(&self, doc: &TantivyDocument) -> Passage {
        let get = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let tags = get(self.fields.tags);
        Passage {
            id: get(self.fields.passage_id),
            article_id: get(self.fields.article_id),
            article_title: get(self.fields.title),
            heading: get(self.fields.heading_text),
            text: get(self.fields.body),
            tags: tags
                .split(", ")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            url: get(self.fields.url),
            questions: Vec::new(),
        }
    }
}
