//! The knowledge base: Markdown articles on disk, split into passages and
//! searched with tantivy.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod analyzer;
mod article;
pub mod base;
pub mod dense;
pub mod import;
mod index;
pub mod links;
pub mod retriever;
pub mod spelling;

pub use analyzer::Analyzer;
pub use article::{Article, ArticleError, ArticleInput, FieldErrors, Passage, parse_article, slug};
pub use index::{Hit, KbIndex, KbIndexError, RetrievalQuery};
pub use retriever::{Answerability, Corpus, RetrievalError, Retrieved, RetrieverKind};

/// Renders an article body to HTML for people: the `/kb/{id}` page and
/// the admin page's preview. Raw HTML in the Markdown is shown as text, and
/// a link or image whose target is not safe (see [`links`]) keeps only its
/// text, so an article cannot run scripts on this origin. Edits and imports
/// refuse such targets already; this covers what was stored before.
pub fn render_markdown(markdown: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut dropped_link = false;
    let mut dropped_image = false;
    let events = Parser::new(markdown).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link { ref dest_url, .. }) if !links::is_safe_target(dest_url) => {
            dropped_link = true;
            None
        }
        Event::End(TagEnd::Link) if dropped_link => {
            dropped_link = false;
            None
        }
        Event::Start(Tag::Image { ref dest_url, .. }) if !links::is_safe_target(dest_url) => {
            dropped_image = true;
            None
        }
        Event::End(TagEnd::Image) if dropped_image => {
            dropped_image = false;
            None
        }
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// A source cited by a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub article_id: String,
    pub title: String,
    pub url: String,
}

impl Citation {
    pub fn of(passage: &Passage) -> Citation {
        Citation {
            article_id: passage.article_id.clone(),
            title: passage.article_title.clone(),
            url: passage.url.clone(),
        }
    }
}

/// What was read from the knowledge directory.
#[derive(Debug, Clone)]
pub struct KbLoad {
    pub articles: Vec<Article>,
    pub skipped: Vec<ArticleError>,
}

/// Reads every `*.md` file under `dir` (sorted, recursively). A file that does
/// not parse is reported and skipped; the rest still load.
pub fn load_dir(dir: &Path) -> std::io::Result<KbLoad> {
    let mut files = Vec::new();
    collect_markdown(dir, &mut files)?;
    files.sort();
    let mut articles = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                skipped.push(ArticleError {
                    file,
                    line: 1,
                    message: format!("cannot read file: {e}"),
                });
                continue;
            }
        };
        match parse_article(&file, &text) {
            Ok(article) if !seen.insert(article.id.clone()) => skipped.push(ArticleError {
                file,
                line: 2,
                message: format!("duplicate article id {:?}", article.id),
            }),
            Ok(article) => articles.push(article),
            Err(e) => skipped.push(e),
        }
    }
    for e in &skipped {
        tracing::warn!(file = %e.file.display(), line = e.line, reason = %e.message, "skipped knowledge-base article");
    }
    Ok(KbLoad { articles, skipped })
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_markdown(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}
