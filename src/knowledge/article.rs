//! Markdown articles with YAML front matter, and their split into passages.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A knowledge-base article as written by shop staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub tags: Vec<String>,
    pub url: Option<String>,
    pub body: String,
    /// Questions customers ask that this article answers, as staff wrote
    /// them: searched with the article's intro.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<String>,
}

/// A searchable piece of an article: the text under one heading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// `article-id#n`, n counting from 0 in document order.
    pub id: String,
    pub article_id: String,
    pub article_title: String,
    /// Heading path inside the article ("Returns > Faulty items"); empty for the intro.
    pub heading: String,
    pub text: String,
    pub tags: Vec<String>,
    pub url: String,
    /// The article's example questions (on its intro passage only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<String>,
}

/// Why an article file was skipped, with the line to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize)]
#[error("{}:{line}: {message}", file.display())]
pub struct ArticleError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    id: String,
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    url: Option<String>,
    #[serde(default)]
    questions: Vec<String>,
}

/// Parses one article file. Lines in errors count from 1 in the file.
pub fn parse_article(file: &Path, text: &str) -> Result<Article, ArticleError> {
    let err = |line: usize, message: String| ArticleError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(err(
            1,
            "missing front matter: the file must start with a `---` line".into(),
        ));
    }
    let mut yaml = String::new();
    let mut closing_line = None;
    for (i, line) in lines.by_ref().enumerate() {
        if line.trim_end() == "---" {
            closing_line = Some(i + 2);
            break;
        }
        yaml.push_str(line);
        yaml.push('\n');
    }
    let closing_line = closing_line.ok_or_else(|| {
        err(
            1,
            "front matter is not closed: add a `---` line after it".into(),
        )
    })?;
    let front: FrontMatter = serde_yaml_ng::from_str(&yaml).map_err(|e| {
        // +1 for the opening `---` line.
        let line = e.location().map(|l| l.line() + 1).unwrap_or(2);
        err(line, format!("invalid front matter: {e}"))
    })?;
    let body: String = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    if !is_valid_id(&front.id) {
        return Err(err(
            2,
            format!(
                "invalid id {:?}: use lowercase letters, digits and dashes",
                front.id
            ),
        ));
    }
    if front.title.trim().is_empty() {
        return Err(err(2, "title is empty".into()));
    }
    if body.is_empty() {
        return Err(err(closing_line, "the article has no body".into()));
    }
    // A file is held to the same rules as an edit in the admin page (the
    // url and the body's links above all: they reach the widget and console).
    ArticleInput {
        id: Some(front.id),
        title: front.title,
        body,
        tags: front.tags,
        url: front.url,
        questions: front.questions,
    }
    .validate()
    .map_err(|e| {
        let line = if e.0.contains_key("body") {
            closing_line + 1
        } else {
            2
        };
        err(line, e.to_string())
    })
}

pub const MAX_QUESTIONS: usize = 30;
pub const MAX_QUESTION_BYTES: usize = 300;

/// Trimmed, distinct, non-empty example questions within the limits.
fn clean_questions(questions: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for q in questions {
        let q = q.trim().to_string();
        if q.len() > MAX_QUESTION_BYTES {
            return Err(format!(
                "each question must be at most {MAX_QUESTION_BYTES} bytes"
            ));
        }
        if !q.is_empty() && !out.contains(&q) {
            out.push(q);
        }
    }
    if out.len() > MAX_QUESTIONS {
        return Err(format!("at most {MAX_QUESTIONS} questions"));
    }
    Ok(out)
}

/// Longest accepted title and body, in bytes, and most tags per article.
pub const MAX_TITLE_BYTES: usize = 300;
pub const MAX_BODY_BYTES: usize = 200_000;
pub const MAX_TAGS: usize = 20;

/// An article as written through the API or an import, before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Questions customers ask that the article answers.
    #[serde(default)]
    pub questions: Vec<String>,
}

/// What is wrong with an article, field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FieldErrors(pub BTreeMap<&'static str, String>);

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ArticleInput {
    /// Checks every field and tidies whitespace. Without an id, one is made
    /// from the title.
    pub fn validate(self) -> Result<Article, FieldErrors> {
        let mut errors = BTreeMap::new();
        let title = self.title.trim().to_string();
        let body = self.body.trim().to_string();
        let id = match self.id.map(|i| i.trim().to_string()) {
            Some(id) if !is_valid_id(&id) => {
                errors.insert(
                    "id",
                    "use 1 to 100 lowercase letters, digits, dashes and underscores".into(),
                );
                id
            }
            Some(id) => id,
            None => slug(&title),
        };
        if title.is_empty() {
            errors.insert("title", "must not be empty".into());
        } else if title.len() > MAX_TITLE_BYTES {
            errors.insert("title", format!("must be at most {MAX_TITLE_BYTES} bytes"));
        }
        if body.is_empty() {
            errors.insert("body", "must not be empty".into());
        } else if body.len() > MAX_BODY_BYTES {
            errors.insert("body", format!("must be at most {MAX_BODY_BYTES} bytes"));
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in self.tags {
            let tag = tag.trim().to_lowercase();
            if tag.is_empty() || tag.len() > 50 || tag.contains(',') {
                errors.insert(
                    "tags",
                    "each tag must be 1 to 50 characters, without commas".into(),
                );
            } else if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            errors.insert("tags", format!("at most {MAX_TAGS} tags"));
        }
        let url = self
            .url
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(url) = &url
            && !super::links::is_valid_article_url(url)
        {
            errors.insert(
                "url",
                "must be an https:// or http:// address with a host, or a path on this site \
                 starting with a single /"
                    .into(),
            );
        }
        if !errors.contains_key("body")
            && let Some(target) = super::links::first_unsafe_target(&body)
        {
            errors.insert(
                "body",
                format!(
                    "link target {target:?} is not allowed: use https://, http://, mailto:, \
                     tel: or a path on this site"
                ),
            );
        }
        let questions = clean_questions(self.questions).unwrap_or_else(|message| {
            errors.insert("questions", message);
            Vec::new()
        });
        if !errors.is_empty() {
            return Err(FieldErrors(errors));
        }
        Ok(Article {
            id,
            title,
            tags,
            url,
            body,
            questions,
        })
    }
}

impl From<&Article> for ArticleInput {
    fn from(a: &Article) -> Self {
        ArticleInput {
            id: Some(a.id.clone()),
            title: a.title.clone(),
            body: a.body.clone(),
            tags: a.tags.clone(),
            url: a.url.clone(),
            questions: a.questions.clone(),
        }
    }
}

/// An id from free text: lowercase words joined by dashes, at most 80 bytes.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if out.len() + word.len() + 1 > 80 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() {
        out.push_str("article");
    }
    out
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Article {
    /// Where a citation links to: the article's own url, or its page on
    /// this server (also when a url stored before the rules were strict
    /// does not pass them now).
    pub fn link(&self) -> String {
        self.url
            .clone()
            .filter(|u| super::links::is_valid_article_url(u))
            .unwrap_or_else(|| format!("/kb/{}", self.id))
    }

    /// Splits the body at Markdown headings. Text before the first heading is the intro.
    pub fn passages(&self) -> Vec<Passage> {
        let mut sections: Vec<(String, String)> = Vec::new();
        let mut path: Vec<(usize, String)> = Vec::new();
        let mut current = String::new();
        let mut heading = String::new();
        let mut in_fence = false;
        for line in self.body.lines() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
            }
            let level = line.bytes().take_while(|&b| b == b'#').count();
            if !in_fence && (1..=6).contains(&level) && line[level..].starts_with(' ') {
                sections.push((heading.clone(), std::mem::take(&mut current)));
                let title = line[level..].trim().to_string();
                path.retain(|(l, _)| *l < level);
                path.push((level, title));
                heading = path
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" > ");
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
        sections.push((heading, current));
        sections
            .into_iter()
            .filter(|(_, text)| !text.trim().is_empty())
            .enumerate()
            .map(|(n, (heading, text))| Passage {
                id: format!("{}#{n}", self.id),
                article_id: self.id.clone(),
                article_title: self.title.clone(),
                // The questions belong to the article as a whole: its first passage.
                questions: if n == 0 {
                    self.questions.clone()
                } else {
                    Vec::new()
                },
                heading,
                text: text.trim().to_string(),
                tags: self.tags.clone(),
                url: self.link(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "---\nid: returns\ntitle: Returns\ntags: [returns, refunds]\n---\nIntro text.\n\n## Window\nThirty days.\n\n### Exceptions\nGift cards.\n";

    #[test]
    fn parses_front_matter_and_splits_by_heading() {
        let a = parse_article(Path::new("r.md"), GOOD).unwrap();
        assert_eq!(a.id, "returns");
        assert_eq!(a.tags, vec!["returns", "refunds"]);
        let p = a.passages();
        let headings: Vec<_> = p.iter().map(|p| p.heading.as_str()).collect();
        assert_eq!(headings, vec!["", "Window", "Window > Exceptions"]);
        assert_eq!(p[2].text, "Gift cards.");
        assert_eq!(p[1].id, "returns#1");
        assert_eq!(p[0].url, "/kb/returns");
    }

    #[test]
    fn example_questions_belong_to_the_intro_passage() {
        let text = "---\nid: q\ntitle: Q\nquestions:\n  - How long?\n  - ''\n  - How long?\n---\nIntro.\n\n## More\nMore text.\n";
        let a = parse_article(Path::new("q.md"), text).unwrap();
        assert_eq!(a.questions, vec!["How long?"]);
        let p = a.passages();
        assert_eq!(p[0].questions, vec!["How long?"]);
        assert!(p[1].questions.is_empty());
        let long = format!(
            "---\nid: q\ntitle: Q\nquestions: [{}]\n---\nBody.\n",
            "x".repeat(400)
        );
        assert!(
            parse_article(Path::new("q.md"), &long)
                .unwrap_err()
                .message
                .contains("questions")
        );
    }

    #[test]
    fn errors_point_at_the_line() {
        let bad_yaml = "---\nid: x\ntitle: [unclosed\n---\nbody\n";
        let e = parse_article(Path::new("x.md"), bad_yaml).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let no_front = "# Title\nbody";
        assert_eq!(
            parse_article(Path::new("x.md"), no_front).unwrap_err().line,
            1
        );
        let unknown = "---\nid: x\ntitle: T\ncolour: red\n---\nbody\n";
        let e = parse_article(Path::new("x.md"), unknown).unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
        let bad_id = "---\nid: Not Valid\ntitle: T\n---\nbody\n";
        assert!(
            parse_article(Path::new("x.md"), bad_id)
                .unwrap_err()
                .message
                .contains("invalid id")
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in ".{0,400}") {
            let _ = parse_article(Path::new("p.md"), &text);
        }

        #[test]
        fn passages_keep_every_body_line(lines in proptest::collection::vec("(## )?[a-z ]{1,20}", 1..20)) {
            let body = lines.join("\n");
            let text = format!("---\nid: p\ntitle: P\n---\n{body}\n");
            if let Ok(article) = parse_article(Path::new("p.md"), &text) {
                let joined: String = article.passages().iter().map(|p| p.text.clone()).collect::<Vec<_>>().join(" ");
                for line in article.body.lines().filter(|l| !l.starts_with("## ") && !l.trim().is_empty()) {
                    prop_assert!(joined.contains(line.trim()));
                }
            }
        }
    }
}
