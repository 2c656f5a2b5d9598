//! Intent classification with out-of-scope detection: a classifier over
//! sentence embeddings plus a confidence threshold calibrated on held-out
//! examples.

use serde::{Deserialize, Serialize};

use super::catalogue::OUT_OF_SCOPE;
use super::classifier::{Classifier, TrainError, TrainOptions, top_k};
use super::ngrams::NgramModel;

/// How many alternatives a result reports besides its top intent.
const ALTERNATIVES: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentScore {
    pub name: String,
    pub confidence: f32,
}

/// What a message is about: `name` is `out_of_scope` when no intent fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub name: String,
    pub confidence: f32,
    /// The top intents with their probabilities, best first.
    pub alternatives: Vec<IntentScore>,
}

impl Intent {
    pub fn is_out_of_scope(&self) -> bool {
        self.name == OUT_OF_SCOPE
    }
}

/// Two views of a message, averaged: the sentence embedding (meaning) and
/// character and word n-grams (wording).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentModel {
    classifier: Classifier,
    /// Not cached: it retrains from the examples in milliseconds, and its
    /// table would make the cache file large.
    #[serde(skip)]
    ngrams: Option<NgramModel>,
    /// Below this top in-scope probability a message is out of scope.
    threshold: f32,
}

/// The label set and each example's index into it.
fn targets_of(labels: &[&str]) -> (Vec<String>, Vec<usize>) {
    let mut names: Vec<String> = labels
        .iter()
        .map(|l| normalise_label(l).to_string())
        .collect();
    names.sort();
    names.dedup();
    let targets = labels
        .iter()
        .map(|l| {
            names
                .binary_search_by(|n| n.as_str().cmp(normalise_label(l)))
                .unwrap_or(0)
        })
        .collect();
    (names, targets)
}

/// Eval sets spell out-of-scope `oos`; the product says `out_of_scope`.
pub fn normalise_label(label: &str) -> &str {
    if label == "oos" { OUT_OF_SCOPE } else { label }
}

impl IntentModel {
    /// Trains on unit embeddings and their labels. One example in seven of
    /// each intent is held out first to calibrate the out-of-scope threshold,
    /// then the final model learns from everything.
    pub fn train(
        texts: &[&str],
        embeddings: &[Vec<f32>],
        labels: &[&str],
        options: &TrainOptions,
    ) -> Result<Self, TrainError> {
        let (names, targets) = targets_of(labels);
        let mut seen = vec![0usize; names.len()];
        let held_out: Vec<bool> = targets
            .iter()
            .map(|&t| {
                seen[t] += 1;
                seen[t] % 7 == 4
            })
            .collect();
        type Split<'a> = (Vec<&'a str>, Vec<Vec<f32>>, Vec<usize>);
        let pick = |keep: bool| -> Split<'_> {
            let mut split: Split<'_> = (Vec::new(), Vec::new(), Vec::new());
            for (i, _) in held_out.iter().enumerate().filter(|(_, h)| **h == keep) {
                split.0.push(texts[i]);
                split.1.push(embeddings[i].clone());
                split.2.push(targets[i]);
            }
            split
        };
        let (train_t, train_x, train_y) = pick(false);
        let (check_t, check_x, check_y) = pick(true);
        let threshold = if check_x.is_empty() {
            0.0
        } else {
            let probe = Self {
                classifier: Classifier::train(&train_x, &train_y, names.clone(), options)?,
                ngrams: Some(NgramModel::train(&train_t, &train_y, names.len())),
                threshold: 0.0,
            };
            probe.calibrate(&check_t, &check_x, &check_y)
        };
        Ok(Self {
            ngrams: Some(NgramModel::train(texts, &targets, names.len())),
            classifier: Classifier::train(embeddings, &targets, names, options)?,
            threshold,
        })
    }

    /// Retrains the n-gram half after the model was read from a cache.
    pub fn attach_ngrams(&mut self, texts: &[&str], labels: &[&str]) {
        let (names, targets) = targets_of(labels);
        if names == self.classifier.labels() {
            self.ngrams = Some(NgramModel::train(texts, &targets, names.len()));
        }
    }

    /// Class probabilities: a weighted geometric mean of both models. The
    /// n-gram model's probabilities are soft (it is trained briefly), so it
    /// gets the larger exponent; measured on Banking77 (90/10 split) this
    /// beats either model alone and their plain average.
    fn probabilities(&self, text: &str, embedding: &[f32]) -> Vec<f32> {
        const EMBEDDING_WEIGHT: f32 = 0.5;
        const NGRAM_WEIGHT: f32 = 1.5;
        let probs = self.classifier.predict(embedding);
        let Some(ngrams) = &self.ngrams else {
            return probs;
        };
        let logits: Vec<f32> = probs
            .iter()
            .zip(ngrams.predict(text))
            .map(|(p, q)| EMBEDDING_WEIGHT * p.max(1e-9).ln() + NGRAM_WEIGHT * q.max(1e-9).ln())
            .collect();
        super::classifier::softmax(&logits)
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn labels(&self) -> &[String] {
        self.classifier.labels()
    }

    fn oos_index(&self) -> Option<usize> {
        self.labels().iter().position(|l| l == OUT_OF_SCOPE)
    }

    /// The best in-scope class and its probability.
    fn best_in_scope(&self, probs: &[f32]) -> (usize, f32) {
        let oos = self.oos_index();
        probs
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != oos)
            .map(|(i, p)| (i, *p))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    }

    /// Picks the threshold that maximises held-out in-scope accuracy plus
    /// out-of-scope recall (in-scope accuracy alone when there are no
    /// out-of-scope examples, which keeps the threshold low).
    fn calibrate(&self, texts: &[&str], xs: &[Vec<f32>], ys: &[usize]) -> f32 {
        let oos = self.oos_index();
        // (top in-scope probability, is an in-scope example, predicted right, predicted oos class)
        let scored: Vec<(f32, bool, bool, bool)> = xs
            .iter()
            .zip(ys)
            .zip(texts)
            .map(|((x, &y), text)| {
                let probs = self.probabilities(text, x);
                let (best, p) = self.best_in_scope(&probs);
                let argmax = top_k(&probs, 1)[0];
                (
                    p,
                    Some(y) != oos,
                    best == y && argmax == y,
                    Some(argmax) == oos,
                )
            })
            .collect();
        let in_scope = scored.iter().filter(|s| s.1).count().max(1) as f32;
        let out_scope = scored.iter().filter(|s| !s.1).count();
        let mut best = (f32::NEG_INFINITY, 0.0);
        for step in 0..=95 {
            let t = step as f32 / 100.0;
            let accuracy =
                scored.iter().filter(|s| s.1 && s.2 && s.0 >= t).count() as f32 / in_scope;
            let recall = if out_scope == 0 {
                0.0
            } else {
                scored.iter().filter(|s| !s.1 && (s.3 || s.0 < t)).count() as f32 / out_scope as f32
            };
            // In-scope accuracy weighs double: declining a real question
            // costs a customer more than answering an odd one politely.
            let objective = 2.0 * accuracy + recall;
            if objective > best.0 + 1e-6 {
                best = (objective, t);
            }
        }
        best.1
    }

    pub fn classify(&self, text: &str, embedding: &[f32]) -> Intent {
        let probs = self.probabilities(text, embedding);
        let alternatives: Vec<IntentScore> = top_k(&probs, ALTERNATIVES)
            .into_iter()
            .map(|i| IntentScore {
                name: self.labels()[i].clone(),
                confidence: probs[i],
            })
            .collect();
        let (best, p) = self.best_in_scope(&probs);
        let argmax = top_k(&probs, 1)[0];
        if Some(argmax) == self.oos_index() || p < self.threshold {
            let confidence = self.oos_index().map_or(1.0 - p, |i| probs[i].max(1.0 - p));
            return Intent {
                name: OUT_OF_SCOPE.to_string(),
                confidence,
                alternatives,
            };
        }
        Intent {
            name: self.labels()[best].clone(),
            confidence: p,
            alternatives,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin()]
    }

    #[test]
    fn an_example_far_from_every_intent_is_out_of_scope() {
        // Two tight intents on a circle, out-of-scope examples opposite.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..30 {
            let jitter = (i as f32 % 5.0) * 0.02;
            xs.push(point(0.0 + jitter));
            ys.push("left");
            xs.push(point(1.6 + jitter));
            ys.push("right");
            xs.push(point(3.9 + jitter * 5.0));
            ys.push("oos");
        }
        let options = TrainOptions {
            epochs: 100,
            learning_rate: 0.05,
            hidden: None,
            ..Default::default()
        };
        let texts = vec![""; xs.len()];
        let model = IntentModel::train(&texts, &xs, &ys, &options).unwrap();
        assert_eq!(model.classify("", &point(0.05)).name, "left");
        assert_eq!(model.classify("", &point(1.62)).name, "right");
        let far = model.classify("", &point(4.0));
        assert!(far.is_out_of_scope(), "{far:?}");
        assert_eq!(far.alternatives.len(), 3);
        assert!(far.alternatives[0].confidence >= far.alternatives[1].confidence);
    }
}
