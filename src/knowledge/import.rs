//! Reading articles from the files shops already have: Markdown (with or
//! without front matter), JSON lines, question/answer CSV and HTML pages.
//! Parsing only; the store decides what each article means for the KB.

use std::path::Path;

use serde::Deserialize;

use super::article::{Article, ArticleInput, parse_article, slug};

/// One uploaded file.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportFile {
    /// File name; its extension picks the format.
    pub name: String,
    pub content: String,
}

/// An article read from a file, or why it could not be.
#[derive(Debug, Clone)]
pub struct ParsedItem {
    /// Where it came from: `file` or `file:line`.
    pub source: String,
    /// The article's id when it is known, even for a rejected item.
    pub id: Option<String>,
    pub article: Result<Article, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Markdown,
    JsonLines,
    Csv,
    Html,
}

fn format_of(name: &str) -> Option<Format> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "md" | "markdown" => Some(Format::Markdown),
        "jsonl" | "ndjson" => Some(Format::JsonLines),
        "csv" => Some(Format::Csv),
        "html" | "htm" => Some(Format::Html),
        _ => None,
    }
}

/// Reads every article in `file`.
pub fn parse_file(file: &ImportFile) -> Vec<ParsedItem> {
    let item = |source: String, id: Option<String>, article: Result<Article, String>| ParsedItem {
        source,
        id,
        article,
    };
    match format_of(&file.name) {
        None => vec![item(
            file.name.clone(),
            None,
            Err("unknown file type: use .md, .jsonl, .csv, .html".into()),
        )],
        Some(Format::Markdown) => {
            let article = markdown(&file.name, &file.content);
            let id = article.as_ref().ok().map(|a| a.id.clone());
            vec![item(file.name.clone(), id, article)]
        }
        Some(Format::Html) => {
            let article = html(&file.name, &file.content);
            let id = article.as_ref().ok().map(|a| a.id.clone());
            vec![item(file.name.clone(), id, article)]
        }
        Some(Format::JsonLines) => json_lines(&file.name, &file.content),
        Some(Format::Csv) => csv_pairs(&file.name, &file.content),
    }
}

fn stem(name: &str) -> String {
    slug(
        Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(name),
    )
}

/// With front matter, as in `knowledge/`; without, the first `# ` heading
/// is the title and the file name the id.
fn markdown(name: &str, text: &str) -> Result<Article, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with("---") {
        return parse_article(Path::new(name), text)
            .map_err(|e| format!("line {}: {}", e.line, e.message));
    }
    let mut title = None;
    let mut body = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("# ") {
            Some(heading) if title.is_none() => title = Some(heading.trim().to_string()),
            _ => body.push(line),
        }
    }
    ArticleInput {
        id: Some(stem(name)),
        title: title.unwrap_or_else(|| stem(name).replace('-', " ")),
        body: body.join("\n"),
        tags: Vec::new(),
        url: None,
        questions: Vec::new(),
    }
    .validate()
    .map_err(|e| e.to_string())
}

fn json_lines(name: &str, text: &str) -> Vec<ParsedItem> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let source = format!("{name}:{}", i + 1);
            match serde_json::from_str::<ArticleInput>(line) {
                Ok(input) => {
                    let id = input.id.clone();
                    ParsedItem {
                        source,
                        id,
                        article: input.validate().map_err(|e| e.to_string()),
                    }
                }
                Err(e) => ParsedItem {
                    source,
                    id: None,
                    article: Err(format!("invalid JSON: {e}")),
                },
            }
        })
        .collect()
}

/// Question/answer pairs, one article each: header `question,answer` and
/// optionally `id`, `tags` (separated by `;`) and `url`.
fn csv_pairs(name: &str, text: &str) -> Vec<ParsedItem> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
        Err(e) => {
            return vec![ParsedItem {
                source: format!("{name}:1"),
                id: None,
                article: Err(format!("invalid CSV header: {e}")),
            }];
        }
    };
    let column = |n: &str| headers.iter().position(|h| h == n);
    let (Some(question), Some(answer)) = (column("question"), column("answer")) else {
        return vec![ParsedItem {
            source: format!("{name}:1"),
            id: None,
            article: Err("the header must name `question` and `answer` columns".into()),
        }];
    };
    let (id_col, tags_col, url_col) = (column("id"), column("tags"), column("url"));
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            // Line of the record, counting the header as line 1.
            let line = record
                .as_ref()
                .ok()
                .and_then(|r| r.position())
                .map_or(i + 2, |p| p.line() as usize);
            let source = format!("{name}:{line}");
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    return ParsedItem {
                        source,
                        id: None,
                        article: Err(format!("invalid CSV row: {e}")),
                    };
                }
            };
            let get = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::to_string);
            let title = get(Some(question)).unwrap_or_default();
            let input = ArticleInput {
                id: get(id_col)
                    .filter(|s| !s.trim().is_empty())
                    .or_else(|| Some(slug(&title))),
                body: get(Some(answer)).unwrap_or_default(),
                tags: get(tags_col)
                    .map(|t| {
                        t.split(';')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                url: get(url_col),
                questions: Vec::new(),
                title,
            };
            ParsedItem {
                source,
                id: input.id.clone(),
                article: input.validate().map_err(|e| e.to_string()),
            }
        })
        .collect()
}

/// The page's readable text as Markdown: headings kept (they split the
/// article into passages), navigation, headers, footers, forms and scripts
/// dropped.
fn html(name: &str, text: &str) -> Result<Article, String> {
    use scraper::{Html, Selector};
    let document = Html::parse_document(text);
    let select = |s: &str| Selector::parse(s).expect("valid selector");
    let text_of = |e: scraper::ElementRef<'_>| {
        e.text()
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let root = document
        .select(&select("main, article, [role=main]"))
        .next()
        .or_else(|| document.select(&select("body")).next())
        .ok_or("the page has no body")?;
    let mut lines: Vec<String> = Vec::new();
    let mut h1: Option<String> = None;
    let blocks = select("h1, h2, h3, h4, h5, h6, p, li, pre, td, th, dt, dd, blockquote");
    let dropped = [
        "nav", "header", "footer", "aside", "form", "script", "style", "noscript",
    ];
    for element in root.select(&blocks) {
        let inside_dropped = element.ancestors().any(|a| {
            a.value().as_element().is_some_and(|e| {
                dropped.contains(&e.name()) || e.attr("aria-hidden") == Some("true")
            })
        });
        // A block inside another block (a <p> in an <li>) is read with its parent.
        let inside_block = element.ancestors().skip(1).any(|a| {
            a.value().as_element().is_some_and(|e| {
                matches!(
                    e.name(),
                    "p" | "li" | "pre" | "td" | "th" | "dd" | "blockquote"
                )
            })
        });
        if inside_dropped || inside_block {
            continue;
        }
        let text = text_of(element);
        if text.is_empty() {
            continue;
        }
        match element.value().name() {
            "h1" if h1.is_none() => h1 = Some(text),
            tag @ ("h1" | "h2" | "h3" | "h4" | "h5" | "h6") => {
                let level: usize = tag[1..].parse().unwrap_or(2);
                lines.push(format!("{} {text}", "#".repeat(level.max(2))));
            }
            "li" => lines.push(format!("- {text}")),
            _ => lines.push(text),
        }
    }
    let page_title = document
        .select(&select("title"))
        .next()
        .map(text_of)
        .filter(|t| !t.is_empty());
    ArticleInput {
        id: Some(stem(name)),
        title: h1.or(page_title).unwrap_or_else(|| stem(name)),
        body: lines.join("\n\n"),
        tags: Vec::new(),
        url: None,
        questions: Vec::new(),
    }
    .validate()
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(name: &str, content: &str) -> Vec<ParsedItem> {
        parse_file(&ImportFile {
            name: name.into(),
            content: content.into(),
        })
    }

    #[test]
    fn markdown_with_and_without_front_matter() {
        let with = parse(
            "a.md",
            "---\nid: returns\ntitle: Returns\n---\nThirty days.",
        );
        assert_eq!(with[0].article.as_ref().unwrap().id, "returns");
        let without = parse("Gift Cards.md", "# Gift cards\n\nThey never expire.");
        let a = without[0].article.as_ref().unwrap();
        assert_eq!(
            (a.id.as_str(), a.title.as_str()),
            ("gift-cards", "Gift cards")
        );
        assert_eq!(a.body, "They never expire.");
    }

    #[test]
    fn json_lines_report_bad_lines_by_number() {
        let items = parse(
            "kb.jsonl",
            "{\"id\":\"a\",\"title\":\"A\",\"body\":\"x\"}\n\n{\"title\":\"\"}\nnot json\n",
        );
        assert_eq!(items.len(), 3);
        assert!(items[0].article.is_ok());
        assert_eq!(items[1].source, "kb.jsonl:3");
        assert!(items[1].article.as_ref().unwrap_err().contains("title"));
        assert!(
            items[2]
                .article
                .as_ref()
                .unwrap_err()
                .contains("invalid JSON")
        );
    }

    #[test]
    fn csv_pairs_become_articles() {
        let items = parse(
            "faq.csv",
            "question,answer,tags\n\"Do you ship to Norway?\",\"Yes, in 5 days.\",shipping;europe\n",
        );
        let a = items[0].article.as_ref().unwrap();
        assert_eq!(a.id, "do-you-ship-to-norway");
        assert_eq!(a.tags, vec!["shipping", "europe"]);
        let missing = parse("faq.csv", "q,a\nx,y\n");
        assert!(
            missing[0]
                .article
                .as_ref()
                .unwrap_err()
                .contains("question")
        );
    }

    #[test]
    fn html_keeps_the_content_and_drops_the_chrome() {
        let page = "<html><head><title>Shop | Care</title><script>var x=1</script></head><body>\
            <nav><a>Home</a><a>Cart</a></nav><main><h1>Caring for leather</h1>\
            <p>Wipe it with a damp cloth.</p><h2>Stains</h2><ul><li>Use saddle soap.</li></ul></main>\
            <footer>© Shop 2026</footer></body></html>";
        let a = parse("leather-care.html", page).remove(0).article.unwrap();
        assert_eq!(a.title, "Caring for leather");
        assert_eq!(
            a.body,
            "Wipe it with a damp cloth.\n\n## Stains\n\n- Use saddle soap."
        );
        assert_eq!(a.passages().len(), 2);
    }

    /// The `href` and `src` values of rendered HTML as a browser reads them
    /// (character references decoded).
    fn link_targets(html: &str) -> Vec<String> {
        let mut targets = Vec::new();
        for attr in ["href=\"", "src=\""] {
            for (at, _) in html.match_indices(attr) {
                let value = &html[at + attr.len()..];
                let value = &value[..value.find('"').unwrap_or(value.len())];
                let mut decoded = value.to_string();
                for (entity, c) in [
                    ("&#58;", ":"),
                    ("&colon;", ":"),
                    ("&quot;", "\""),
                    ("&#39;", "'"),
                    ("&lt;", "<"),
                    ("&gt;", ">"),
                    ("&amp;", "&"),
                ] {
                    decoded = decoded.replace(entity, c);
                }
                targets.push(decoded);
            }
        }
        targets
    }

    proptest! {
        #[test]
        fn no_input_panics(name in "[a-z]{1,8}\\.(md|jsonl|csv|html|txt)", content in ".{0,300}") {
            let _ = parse(&name, &content);
        }

        /// Whatever the format, an article that gets in has a citation
        /// link of this site or an http(s) host, and a body whose rendered
        /// links run no script.
        #[test]
        fn accepted_articles_never_carry_a_script_link(
            format in 0..4usize,
            scheme in "(javascript|JaVaScRiPt|java\tscript|data|vbscript|https|http|mailto|)",
            colon in "(:|&#58;|&colon;|%3A|)",
            slashes in "(//|/\\\\|/|)",
            rest in "[a-z0-9.()&#;%]{0,16}",
        ) {
            let target = format!("{scheme}{colon}{slashes}{rest}");
            let body = format!("Read [this]({target}) and <{target}> before you return it.");
            let quoted = serde_json::to_string(&target).unwrap();
            let (name, content) = match format {
                0 => ("a.md", format!("---\ntitle: Returns\nurl: {quoted}\n---\n{body}\n")),
                1 => ("a.jsonl", serde_json::json!({"title": "Returns", "body": body, "url": target}).to_string()),
                2 => ("a.csv", format!("question,answer\nHow do returns work?,\"{}\"\n", body.replace('"', "\"\""))),
                _ => ("a.html", format!("<h1>Returns</h1><p>Read <a href=\"{target}\">this</a>.</p>")),
            };
            for item in parse(name, &content) {
                let Ok(article) = item.article else { continue };
                if let Some(url) = &article.url {
                    prop_assert!(crate::knowledge::links::is_valid_article_url(url), "{url}");
                    prop_assert!(!url.to_ascii_lowercase().contains("script:"), "{url}");
                }
                let html = crate::knowledge::render_markdown(&article.body);
                for target in link_targets(&html) {
                    prop_assert!(crate::knowledge::links::is_safe_target(&target), "{target} in {html}");
                }
            }
        }
    }
}
