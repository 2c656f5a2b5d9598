//! A lexical intent model: hashed word and character n-grams, TF-IDF
//! weighted, under a softmax trained by SGD. It sees what the sentence
//! embedding blurs (product names, typos' shared letters, rare keywords), so
//! averaging the two models beats either alone.

use serde::{Deserialize, Serialize};

use super::classifier::softmax;

/// Hash buckets for n-grams; collisions cost little at this size.
const BUCKETS: usize = 1 << 16;
const EPOCHS: usize = 12;

/// Sparse features: (bucket, weight), L2-normalised.
type Features = Vec<(u32, f32)>;

fn fnv1a(parts: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for part in parts {
        for &byte in *part {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Word unigrams and bigrams plus character 3- to 5-grams of each word
/// (with boundary marks), as bucket counts.
fn counts(text: &str) -> Vec<u32> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut buckets = Vec::new();
    for (i, word) in words.iter().enumerate() {
        buckets.push(fnv1a(&[b"w", word.as_bytes()]));
        if let Some(next) = words.get(i + 1) {
            buckets.push(fnv1a(&[b"b", word.as_bytes(), next.as_bytes()]));
        }
        let marked: Vec<char> = std::iter::once('<')
            .chain(word.chars())
            .chain(std::iter::once('>'))
            .collect();
        for n in 3..=5 {
            for gram in marked.windows(n) {
                let gram: String = gram.iter().collect();
                buckets.push(fnv1a(&[b"c", gram.as_bytes()]));
            }
        }
    }
    buckets.iter().map(|h| h % BUCKETS as u32).collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NgramModel {
    classes: usize,
    idf: Vec<f32>,
    /// `BUCKETS × classes`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl NgramModel {
    pub fn train(texts: &[&str], targets: &[usize], classes: usize) -> Self {
        let docs: Vec<Vec<u32>> = texts.iter().map(|t| counts(t)).collect();
        let mut df = vec![0f32; BUCKETS];
        for doc in &docs {
            let mut seen = doc.clone();
            seen.sort_unstable();
            seen.dedup();
            for b in seen {
                df[b as usize] += 1.0;
            }
        }
        let n = docs.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
            .collect();
        let mut model = Self {
            classes,
            idf,
            weights: vec![0.0; BUCKETS * classes],
            bias: vec![0.0; classes],
        };
        let features: Vec<Features> = docs.iter().map(|d| model.weigh(d)).collect();
        let mut order: Vec<usize> = (0..features.len()).collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for epoch in 0..EPOCHS {
            // A seeded shuffle: training must be reproducible.
            for i in (1..order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let rate = 0.5 / (1.0 + epoch as f32);
            for &i in &order {
                let probs = softmax(&model.logits_of(&features[i]));
                for (class, p) in probs.iter().enumerate() {
                    let gradient = p - if class == targets[i] { 1.0 } else { 0.0 };
                    if gradient.abs() < 1e-4 {
                        continue;
                    }
                    model.bias[class] -= rate * gradient;
                    for &(bucket, value) in &features[i] {
                        model.weights[bucket as usize * classes + class] -= rate * gradient * value;
                    }
                }
            }
        }
        model
    }

    fn weigh(&self, doc: &[u32]) -> Features {
        let mut sorted = doc.to_vec();
        sorted.sort_unstable();
        let mut features: Features = Vec::new();
        for b in sorted {
            match features.last_mut() {
                Some((last, count)) if *last == b => *count += 1.0,
                _ => features.push((b, 1.0)),
            }
        }
        for (b, value) in features.iter_mut() {
            *value = (1.0 + value.ln()) * self.idf[*b as usize];
        }
        let norm = features
            .iter()
            .map(|(_, v)| v * v)
            .sum::<f32>()
            .sqrt()
            .max(1e-12);
        features.iter_mut().for_each(|(_, v)| *v /= norm);
        features
    }

    fn logits_of(&self, features: &Features) -> Vec<f32> {
        let mut logits = self.bias.clone();
        for &(bucket, value) in features {
            let row = &self.weights[bucket as usize * self.classes..][..self.classes];
            for (l, w) in logits.iter_mut().zip(row) {
                *l += w * value;
            }
        }
        logits
    }

    pub fn predict(&self, text: &str) -> Vec<f32> {
        softmax(&self.logits_of(&self.weigh(&counts(text))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_keywords_and_tolerates_typos() {
        let texts = [
            "where is my parcel",
            "track my parcel",
            "parcel status please",
            "i want a refund",
            "refund my money",
            "give me a refund now",
        ];
        let targets = [0, 0, 0, 1, 1, 1];
        let model = NgramModel::train(&texts, &targets, 2);
        assert!(model.predict("has my parcel shipped")[0] > 0.6);
        // Character n-grams carry a misspelling.
        assert!(model.predict("refunt please")[1] > 0.5);
        let p = model.predict("anything");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
