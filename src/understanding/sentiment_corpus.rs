//! The public rated sentences sentiment also learns from: tweets, product
//! review snippets and newspaper editorial snippets, each rated by 20 or
//! more people from -4 to +4 (Hutto & Gilbert, ICWSM 2014; shipped in the
//! vaderSentiment 3.3.2 source distribution, MIT). Fetched like the models
//! (`model_files::SENTIMENT_CORPUS`); provenance in
//! `docs/sentiment-sources.md`. Movie-review snippets, the fourth
//! set, are left out: they are about films, not purchases, and as many as
//! the other three together would double the training time.

use std::path::{Path, PathBuf};

use super::sentiment::SentimentLabel;

/// The files read, in this order.
pub const FILES: [&str; 3] = [
    "tweets_GroundTruth.txt",
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
];

/// A mean rating at least this far above 0 is positive. The raters' scale
/// has 9 points and "neither" in the middle; a rating under three quarters
/// of a point is a polite or matter-of-fact sentence more than a pleased
/// one, and customer-service messages are mostly that: from 0.5 to 0.75,
/// macro-F1 on the airline development set rose from 0.692-0.696 to
/// 0.705-0.711 and TweetEval macro-recall from 0.658-0.667 to 0.670-0.674
/// over three training seeds (README, "Intents and sentiment").
pub const POSITIVE_FROM: f32 = 0.75;

/// A mean rating this far below 0 or further is negative: a quarter point,
/// not half, because what sentiment is for is catching an unhappy customer
/// early, and a mild complaint ("it took an hour though") is rated only a
/// little below "neither". Measured on the development sets: airline
/// negative recall 0.775 → 0.812 for precision 0.887 → 0.880, the calm shop
/// questions no more often negative (README, "Intents and sentiment").
pub const NEGATIVE_FROM: f32 = 0.25;

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error(
        "cannot read the sentiment corpus file {path} (run `frontdesk fetch-models`): {source}"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: expected `id<TAB>rating<TAB>text`")]
    Line { path: PathBuf, line: usize },
}

pub struct Corpus {
    pub texts: Vec<String>,
    pub labels: Vec<SentimentLabel>,
    /// Over the files' bytes and the labels given to their lines, for the
    /// model cache's key: new thresholds adapt the model again by themselves.
    pub digest: String,
}

pub fn label_of(rating: f32) -> SentimentLabel {
    if rating <= -NEGATIVE_FROM {
        SentimentLabel::Negative
    } else if rating >= POSITIVE_FROM {
        SentimentLabel::Positive
    } else {
        SentimentLabel::Neutral
    }
}

/// `id<TAB>mean rating<TAB>text`; the text may hold further tabs.
pub fn parse_line(line: &str) -> Option<(f32, &str)> {
    let mut parts = line.trim_end_matches(['\r', '\n']).splitn(3, '\t');
    let _id = parts.next()?;
    let rating: f32 = parts.next()?.trim().parse().ok()?;
    let text = parts.next()?.trim();
    (rating.is_finite() && !text.is_empty()).then_some((rating, text))
}

pub fn load(dir: &Path) -> Result<Corpus, CorpusError> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let (mut texts, mut labels) = (Vec::new(), Vec::new());
    for name in FILES {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|source| CorpusError::Io {
            path: path.clone(),
            source,
        })?;
        hasher.update(&bytes);
        // A few snippets are not valid UTF-8; they are read lossily.
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (rating, snippet) = parse_line(line).ok_or_else(|| CorpusError::Line {
                path: path.clone(),
                line: i + 1,
            })?;
            texts.push(snippet.to_string());
            labels.push(label_of(rating));
        }
    }
    hasher.update(labels.iter().map(|l| l.index() as u8).collect::<Vec<u8>>());
    Ok(Corpus {
        texts,
        labels,
        digest: hex::encode(&hasher.finalize()[..12]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_line_and_labels_it() {
        let (rating, text) = parse_line("1_1\t-0.9\tno picture\tat all\r\n").unwrap();
        assert_eq!((rating, text), (-0.9, "no picture\tat all"));
        assert_eq!(label_of(rating), SentimentLabel::Negative);
        assert_eq!(label_of(0.74), SentimentLabel::Neutral);
        assert_eq!(label_of(-0.24), SentimentLabel::Neutral);
        assert_eq!(label_of(-0.25), SentimentLabel::Negative);
        assert_eq!(label_of(0.75), SentimentLabel::Positive);
        assert!(parse_line("7\tnot a number\ttext").is_none());
        assert!(parse_line("7\t1.0").is_none());
        assert!(parse_line("7\tNaN\ttext").is_none());
    }

    proptest! {
        #[test]
        fn any_written_line_reads_back(id in "[0-9_]{1,6}", rating in -4.0f32..4.0, text in "[a-zA-Z][a-zA-Z .,!?'\t]{0,40}[a-z]") {
            let line = format!("{id}\t{rating}\t{text}\r\n");
            let (r, t) = parse_line(&line).unwrap();
            prop_assert_eq!(r, rating);
            prop_assert_eq!(t, text.as_str());
        }

        #[test]
        fn never_panics(line in ".{0,80}") {
            let _ = parse_line(&line);
        }
    }
}
