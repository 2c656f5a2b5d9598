//! Intent classification with out-of-scope detection: classifiers over
//! sentence embeddings and n-grams, plus two rejections calibrated by
//! cross-validation: too little confidence, or too far from every example.

use serde::{Deserialize, Serialize};

use super::catalogue::OUT_OF_SCOPE;
use super::classifier::{Classifier, TrainError, TrainOptions, top_k};
use super::neighbours::Neighbours;
use super::ngrams::NgramModel;

/// Shares of the questions the classifier gets right that the similarity
/// floor may turn away, and then the confidence threshold: together about
/// one in 180, the price of declining what no intent covers. The floor goes
/// first and gets most: it needs no out-of-scope examples, which a shop's
/// catalogue has few of, and rejects more of them per in-scope one lost.
const SIMILARITY_BUDGET: f32 = 0.005;
const THRESHOLD_BUDGET: f32 = 0.0005;

/// Cross-validation folds the budgets are measured on.
const FOLDS: usize = 5;

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

/// Two views of a message, averaged: the sentence embedding (meaning, by
/// an MLP and a linear softmax, which err on different questions) and
/// character and word n-grams (wording).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentModel {
    classifier: Classifier,
    linear: Classifier,
    /// Not cached: it retrains from the examples in milliseconds, and its
    /// table would make the cache file large.
    #[serde(skip)]
    ngrams: Option<NgramModel>,
    /// Below this top in-scope probability a message is out of scope.
    threshold: f32,
    /// The in-scope examples (cached: re-embedding them would cost seconds).
    neighbours: Neighbours,
    /// Below this similarity to the nearest in-scope example, a message is
    /// out of scope.
    min_similarity: f32,
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

/// Each example's cross-validation fold: the k-th of an intent's n
/// examples goes to fold k·FOLDS/n, so each fold holds a contiguous block of
/// every intent. Examples written one after another are often paraphrases
/// of each other; dealt out in turn (every fifth, or one in seven as this
/// did before), a held-out question kept its near twin in training and was
/// scored as if seen: on CLINC150 that estimated 97.5% in-scope accuracy
/// where unseen questions (val) get 96.4%. Held out in blocks: 96.5%.
fn blocked_folds(targets: &[usize], classes: usize) -> Vec<usize> {
    let mut total = vec![0usize; classes];
    for &t in targets {
        total[t] += 1;
    }
    let mut seen = vec![0usize; classes];
    targets
        .iter()
        .map(|&t| {
            let k = seen[t];
            seen[t] += 1;
            k * FOLDS / total[t]
        })
        .collect()
}

/// A held-out in-scope question as the model trained without it saw it.
struct HeldOut {
    confidence: f32,
    nearest: f32,
    right: bool,
}

impl IntentModel {
    /// Trains on unit embeddings and their labels. The out-of-scope cut-offs
    /// are calibrated on every example as scored by a model trained on the
    /// other folds; then the final model learns from everything.
    pub fn train(
        texts: &[&str],
        embeddings: &[Vec<f32>],
        labels: &[&str],
        options: &TrainOptions,
    ) -> Result<Self, TrainError> {
        let (names, targets) = targets_of(labels);
        let folds = blocked_folds(&targets, names.len());
        let oos = names.iter().position(|n| n == OUT_OF_SCOPE);
        let fit = |texts: &[&str], xs: &[Vec<f32>], ys: &[usize]| -> Result<Self, TrainError> {
            Ok(Self {
                classifier: Classifier::train(xs, ys, names.clone(), options)?,
                linear: Classifier::train(xs, ys, names.clone(), &linear_options(options))?,
                ngrams: Some(NgramModel::train(texts, ys, names.len())),
                threshold: 0.0,
                neighbours: Neighbours::new(
                    xs.iter()
                        .zip(ys)
                        .filter(|(_, y)| Some(**y) != oos)
                        .map(|(x, _)| x),
                ),
                min_similarity: -1.0,
            })
        };
        let mut held_out = Vec::new();
        for fold in 0..FOLDS {
            let (mut train_t, mut train_x, mut train_y) = (Vec::new(), Vec::new(), Vec::new());
            let mut check = Vec::new();
            for (i, &f) in folds.iter().enumerate() {
                if f != fold {
                    train_t.push(texts[i]);
                    train_x.push(embeddings[i].clone());
                    train_y.push(targets[i]);
                } else if Some(targets[i]) != oos {
                    check.push(i);
                }
            }
            if train_x.is_empty() || check.is_empty() {
                continue;
            }
            let model = fit(&train_t, &train_x, &train_y)?;
            held_out.extend(
                check
                    .iter()
                    .map(|&i| model.held_out(texts[i], &embeddings[i], targets[i])),
            );
        }
        let (threshold, min_similarity) = if held_out.is_empty() {
            (0.0, -1.0)
        } else {
            cut_offs(&held_out)
        };
        Ok(Self {
            threshold,
            min_similarity,
            ..fit(texts, embeddings, &targets)?
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
    /// beats either model alone and their plain average. The linear member
    /// lifts CLINC150 val in-scope accuracy (no rejection) from 96.2 to 96.7.
    fn probabilities(&self, text: &str, embedding: &[f32]) -> Vec<f32> {
        const MLP_WEIGHT: f32 = 0.5;
        const LINEAR_WEIGHT: f32 = 1.0;
        const NGRAM_WEIGHT: f32 = 1.5;
        let log = |p: f32| p.max(1e-9).ln();
        let mut logits: Vec<f32> = self
            .classifier
            .predict(embedding)
            .iter()
            .zip(self.linear.predict(embedding))
            .map(|(p, q)| MLP_WEIGHT * log(*p) + LINEAR_WEIGHT * log(q))
            .collect();
        if let Some(ngrams) = &self.ngrams {
            for (l, q) in logits.iter_mut().zip(ngrams.predict(text)) {
                *l += NGRAM_WEIGHT * log(q);
            }
        }
        super::classifier::softmax(&logits)
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn min_similarity(&self) -> f32 {
        self.min_similarity
    }

    /// The same model with another out-of-scope threshold, for tuning.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
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

    /// How this model sees an in-scope example it was not trained on.
    fn held_out(&self, text: &str, x: &[f32], label: usize) -> HeldOut {
        let probs = self.probabilities(text, x);
        let (best, confidence) = self.best_in_scope(&probs);
        HeldOut {
            confidence,
            nearest: self.neighbours.nearest(x),
            right: best == label && top_k(&probs, 1)[0] == label,
        }
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
        let far = self.neighbours.nearest(embedding) < self.min_similarity;
        if Some(argmax) == self.oos_index() || p < self.threshold || far {
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

/// The similarity floor, then the confidence threshold: each the highest
/// that turns away at most its budget of the correctly classified held-out
/// in-scope questions. Out-of-scope examples are not used: a catalogue has
/// few, so any rule weighing them swings on a handful of examples (measured
/// on CLINC150, where 14 held-out examples pushed a threshold to 0.89 and
/// in-scope accuracy down by 4 points).
fn cut_offs(held_out: &[HeldOut]) -> (f32, f32) {
    let total = held_out.len().max(1) as f32;
    let kept = |t: f32, k: f32| {
        let n = held_out
            .iter()
            .filter(|h| h.right && h.confidence >= t && h.nearest >= k);
        n.count() as f32 / total
    };
    // The highest of 0.00, 0.01, … 0.95 before `within` first fails.
    let highest = |within: &dyn Fn(f32) -> bool| {
        (0..=95)
            .map(|step| step as f32 / 100.0)
            .take_while(|&v| within(v))
            .last()
            .unwrap_or(0.0)
    };
    let ceiling = kept(0.0, -1.0);
    let min_similarity = highest(&|k| ceiling - kept(0.0, k) <= SIMILARITY_BUDGET);
    let after = kept(0.0, min_similarity);
    let threshold = highest(&|t| after - kept(t, min_similarity) <= THRESHOLD_BUDGET);
    (threshold, min_similarity)
}

/// The linear member: no hidden layer, and a larger step, since it has
/// only the one layer to fit.
fn linear_options(options: &TrainOptions) -> TrainOptions {
    TrainOptions {
        hidden: None,
        dropout: 0.0,
        learning_rate: options.learning_rate * 3.0,
        ..*options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin()]
    }

    /// Two tight intents on a circle, and out-of-scope examples opposite
    /// when asked for; trained as a linear model.
    fn circle_model(with_oos: bool) -> IntentModel {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..30 {
            let jitter = (i as f32 % 5.0) * 0.02;
            xs.push(point(jitter));
            ys.push("left");
            xs.push(point(1.6 + jitter));
            ys.push("right");
            if with_oos {
                xs.push(point(3.9 + jitter * 5.0));
                ys.push("oos");
            }
        }
        let options = TrainOptions {
            epochs: 100,
            learning_rate: 0.05,
            hidden: None,
            ..Default::default()
        };
        IntentModel::train(&vec![""; xs.len()], &xs, &ys, &options).unwrap()
    }

    #[test]
    fn folds_are_contiguous_blocks_of_each_intent() {
        let targets = [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        let folds = blocked_folds(&targets, 2);
        let of = |class| -> Vec<usize> {
            targets
                .iter()
                .zip(&folds)
                .filter(|(t, _)| **t == class)
                .map(|(_, f)| *f)
                .collect()
        };
        // Ten examples of intent 0: two per fold, in order.
        assert_eq!(of(0), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        // Two of intent 1: the first and the third fold.
        assert_eq!(of(1), [0, 2]);
    }

    #[test]
    fn cut_offs_turn_away_at_most_their_budget_of_right_answers() {
        let held = |confidence, nearest, right| HeldOut {
            confidence,
            nearest,
            right,
        };
        let mut held_out: Vec<HeldOut> = (0..994).map(|_| held(0.99, 0.9, true)).collect();
        // 5 of 1,000 right answers far from the rest: within the floor's
        // 0.5%, so the floor rises to where the others are.
        held_out.extend((0..5).map(|_| held(0.99, 0.2, true)));
        // One right answer with low confidence: 0.1%, over the threshold's
        // 0.05%, so the threshold stays at or below it.
        held_out.push(held(0.3, 0.9, true));
        // Wrong answers cost nothing.
        held_out.extend((0..50).map(|_| held(0.1, 0.1, false)));
        let (threshold, min_similarity) = cut_offs(&held_out);
        assert_eq!(min_similarity, 0.9);
        assert_eq!(threshold, 0.3);
    }

    #[test]
    fn an_example_far_from_every_intent_is_out_of_scope() {
        let model = circle_model(true);
        assert_eq!(model.classify("", &point(0.05)).name, "left");
        assert_eq!(model.classify("", &point(1.62)).name, "right");
        let far = model.classify("", &point(4.0));
        assert!(far.is_out_of_scope(), "{far:?}");
        assert_eq!(far.alternatives.len(), 3);
        assert!(far.alternatives[0].confidence >= far.alternatives[1].confidence);
    }

    #[test]
    fn a_message_far_from_every_example_is_out_of_scope_without_oos_examples() {
        // No out-of-scope class at all: only the similarity floor can tell.
        let model = circle_model(false);
        assert!(model.min_similarity() > 0.5, "{}", model.min_similarity());
        assert_eq!(model.classify("", &point(0.03)).name, "left");
        assert!(model.classify("", &point(3.9)).is_out_of_scope());
    }
}
