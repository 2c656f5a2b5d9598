//! Knowledge-base articles: the store is their source of truth. Every
//! change writes a full version (who, when, what), so any version can be
//! read back and two compared; retiring is a version too.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Store, StoreError, now_ms};
use crate::knowledge::Article;

/// What a version did to its article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    Updated,
    Retired,
    Restored,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Retired => "retired",
            Change::Restored => "restored",
        }
    }

    fn parse(s: &str) -> Result<Change, StoreError> {
        Ok(match s {
            "created" => Change::Created,
            "updated" => Change::Updated,
            "retired" => Change::Retired,
            "restored" => Change::Restored,
            other => return Err(StoreError::Corrupt(format!("unknown change {other:?}"))),
        })
    }
}

/// One version of an article: its full content and who made it when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArticleVersion {
    pub id: String,
    pub version: i64,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub url: Option<String>,
    pub questions: Vec<String>,
    /// Retired articles keep their history but are not answered from.
    pub retired: bool,
    pub change: Change,
    pub author: String,
    pub at_ms: i64,
}

impl ArticleVersion {
    pub fn article(&self) -> Article {
        Article {
            id: self.id.clone(),
            title: self.title.clone(),
            tags: self.tags.clone(),
            url: self.url.clone(),
            body: self.body.clone(),
            questions: self.questions.clone(),
        }
    }

    fn same_content(&self, a: &Article) -> bool {
        self.title == a.title
            && self.body == a.body
            && self.tags == a.tags
            && self.url == a.url
            && self.questions == a.questions
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArticleWriteError {
    #[error("there is no article {0:?}")]
    NotFound(String),
    #[error("an article with id {0:?} already exists")]
    Exists(String),
    #[error(
        "article {id:?} is at version {current}, not {given}: reload it and apply your change again"
    )]
    VersionConflict {
        id: String,
        given: i64,
        current: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ArticleWriteError {
    fn from(e: rusqlite::Error) -> Self {
        ArticleWriteError::Store(e.into())
    }
}

/// Which articles a listing shows.
#[derive(Debug, Clone, Default)]
pub struct ArticleFilter {
    pub tag: Option<String>,
    /// Case-insensitive substring of the title or body.
    pub text: Option<String>,
    pub include_retired: bool,
    pub offset: usize,
    pub limit: usize,
}

/// What an import did to one article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Created,
    Updated,
    Unchanged,
}

const COLUMNS: &str = "a.id, v.version, v.title, v.body, v.tags, v.url, v.retired, v.change, v.author, v.at_ms, v.questions";

type VersionRow = (ArticleVersion, String, String, String);

fn read_version(row: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok((
        ArticleVersion {
            id: row.get(0)?,
            version: row.get(1)?,
            title: row.get(2)?,
            body: row.get(3)?,
            tags: Vec::new(),
            url: row.get(5)?,
            questions: Vec::new(),
            retired: row.get(6)?,
            change: Change::Created,
            author: row.get(8)?,
            at_ms: row.get(9)?,
        },
        row.get::<_, String>(4)?,
        row.get::<_, String>(7)?,
        row.get::<_, String>(10)?,
    ))
}

fn finish(parts: VersionRow) -> Result<ArticleVersion, StoreError> {
    let (mut v, tags, change, questions) = parts;
    v.tags = serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    v.questions =
        serde_json::from_str(&questions).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    v.change = Change::parse(&change)?;
    Ok(v)
}

/// The current version of `id`, if the article exists.
fn current(conn: &Connection, id: &str) -> Result<Option<ArticleVersion>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM articles a JOIN article_versions v
         ON v.article_id = a.id AND v.version = a.version WHERE a.id = ?1"
    ))?
    .query_row([id], read_version)
    .optional()?
    .map(finish)
    .transpose()
}

/// Writes a new version and points the article at it.
fn write_version(
    tx: &Transaction<'_>,
    article: &Article,
    retired: bool,
    change: Change,
    author: &str,
) -> Result<ArticleVersion, StoreError> {
    let at_ms = now_ms();
    let version: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM article_versions WHERE article_id = ?1",
        [&article.id],
        |r| r.get(0),
    )?;
    let json =
        |v: &Vec<String>| serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()));
    let tags = json(&article.tags)?;
    let questions = json(&article.questions)?;
    tx.execute(
        "INSERT INTO article_versions (article_id, version, title, body, tags, url, retired, change, author, at_ms, questions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![article.id, version, article.title, article.body, tags, article.url, retired, change.as_str(), author, at_ms, questions],
    )?;
    tx.execute(
        "INSERT INTO articles (id, version, retired) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, retired = excluded.retired",
        params![article.id, version, retired],
    )?;
    Ok(ArticleVersion {
        id: article.id.clone(),
        version,
        title: article.title.clone(),
        body: article.body.clone(),
        tags: article.tags.clone(),
        url: article.url.clone(),
        questions: article.questions.clone(),
        retired,
        change,
        author: author.to_string(),
        at_ms,
    })
}

fn import_batch(
    conn: &mut Connection,
    articles: &[Article],
    author: &str,
    apply: bool,
) -> Result<Vec<(ImportStatus, ArticleVersion)>, StoreError> {
    let tx = conn.transaction()?;
    let outcomes = articles
        .iter()
        .map(|a| import_one(&tx, a, author))
        .collect::<Result<Vec<_>, _>>()?;
    if apply {
        tx.commit()?;
    }
    Ok(outcomes)
}

/// Imports one article inside a transaction.
fn import_one(
    tx: &Transaction<'_>,
    article: &Article,
    author: &str,
) -> Result<(ImportStatus, ArticleVersion), StoreError> {
    Ok(match current(tx, &article.id)? {
        None => (
            ImportStatus::Created,
            write_version(tx, article, false, Change::Created, author)?,
        ),
        Some(v) if !v.retired && v.same_content(article) => (ImportStatus::Unchanged, v),
        Some(v) => {
            let change = if v.retired {
                Change::Restored
            } else {
                Change::Updated
            };
            (
                ImportStatus::Updated,
                write_version(tx, article, false, change, author)?,
            )
        }
    })
}

impl Store {
    /// The articles customers are answered from.
    pub fn active_articles_blocking(&self) -> Result<Vec<Article>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM articles a JOIN article_versions v
             ON v.article_id = a.id AND v.version = a.version
             WHERE a.retired = 0 ORDER BY a.id"
        ))?;
        let rows = stmt.query_map([], read_version)?;
        rows.map(|r| finish(r?).map(|v| v.article())).collect()
    }

    pub async fn article(&self, id: String) -> Result<Option<ArticleVersion>, StoreError> {
        self.run(move |conn| current(conn, &id)).await
    }

    /// A page of current versions, by id, and how many match in all.
    pub async fn list_articles(
        &self,
        filter: ArticleFilter,
    ) -> Result<(Vec<ArticleVersion>, usize), StoreError> {
        self.run(move |conn| {
            let condition = "(?1 OR a.retired = 0)
                 AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(v.tags) t WHERE t.value = ?2))
                 AND (?3 IS NULL OR instr(lower(v.title || ' ' || v.body), lower(?3)) > 0)";
            let from = "FROM articles a JOIN article_versions v
                 ON v.article_id = a.id AND v.version = a.version";
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) {from} WHERE {condition}"),
                params![filter.include_retired, filter.tag, filter.text],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} {from} WHERE {condition} ORDER BY a.id LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    filter.include_retired,
                    filter.tag,
                    filter.text,
                    filter.limit as i64,
                    filter.offset as i64
                ],
                read_version,
            )?;
            let page = rows.map(|r| finish(r?)).collect::<Result<Vec<_>, _>>()?;
            Ok((page, total as usize))
        })
        .await
    }

    pub async fn create_article(
        &self,
        article: Article,
        author: String,
    ) -> Result<ArticleVersion, ArticleWriteError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if current(&tx, &article.id)?.is_some() {
                return Err(ArticleWriteError::Exists(article.id));
            }
            let v = write_version(&tx, &article, false, Change::Created, &author)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    /// Replaces the article's content if it is still at `expected`. An edit
    /// that changes nothing makes no version. A retired article stays
    /// retired: restore it to answer from it again.
    pub async fn update_article(
        &self,
        article: Article,
        expected: i64,
        author: String,
    ) -> Result<ArticleVersion, ArticleWriteError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let now = checked(&tx, &article.id, Some(expected))?;
            if now.same_content(&article) {
                return Ok(now);
            }
            let v = write_version(&tx, &article, now.retired, Change::Updated, &author)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    /// Retires (`retire`) or restores an article; doing it twice changes nothing.
    pub async fn set_retired(
        &self,
        id: String,
        retire: bool,
        expected: Option<i64>,
        author: String,
    ) -> Result<ArticleVersion, ArticleWriteError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let now = checked(&tx, &id, expected)?;
            if now.retired == retire {
                return Ok(now);
            }
            let change = if retire {
                Change::Retired
            } else {
                Change::Restored
            };
            let v = write_version(&tx, &now.article(), retire, change, &author)?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    /// Every version of an article, oldest first.
    pub async fn article_versions(&self, id: String) -> Result<Vec<ArticleVersion>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM article_versions v WHERE v.article_id = ?1 ORDER BY v.version",
                COLUMNS.replace("a.id", "v.article_id")
            ))?;
            let rows = stmt.query_map([id], read_version)?;
            rows.map(|r| finish(r?)).collect()
        })
        .await
    }

    /// Writes a whole batch in one transaction: all of it or none of it.
    /// With `apply` false the transaction is rolled back: the outcomes say
    /// what the batch would do.
    pub async fn import_articles(
        &self,
        articles: Vec<Article>,
        author: String,
        apply: bool,
    ) -> Result<Vec<(ImportStatus, ArticleVersion)>, StoreError> {
        self.run(move |conn| import_batch(conn, &articles, &author, apply))
            .await
    }

    /// Fills an empty knowledge base with `articles` (the shipped or the
    /// operator's `knowledge/` folder) and returns how many were written.
    /// Blocking: runs at start-up, before the server listens.
    pub fn seed_if_empty(&self, articles: &[Article]) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let total: i64 = conn.query_row("SELECT COUNT(*) FROM articles", [], |r| r.get(0))?;
        if total > 0 {
            return Ok(0);
        }
        Ok(import_batch(&mut conn, articles, "seed", true)?.len())
    }
}

/// The current version, after checking that it exists and is at `expected`.
fn checked(
    conn: &Connection,
    id: &str,
    expected: Option<i64>,
) -> Result<ArticleVersion, ArticleWriteError> {
    let now = current(conn, id)?.ok_or_else(|| ArticleWriteError::NotFound(id.to_string()))?;
    match expected {
        Some(given) if given != now.version => Err(ArticleWriteError::VersionConflict {
            id: id.to_string(),
            given,
            current: now.version,
        }),
        _ => Ok(now),
    }
}
