//! A small softmax classifier over sentence embeddings: trained with candle's
//! autograd and AdamW, run with plain loops (a forward pass is one 384 × k
//! product, cheaper than building tensors).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    /// Width of one hidden ReLU layer; `None` trains a linear model.
    pub hidden: Option<usize>,
    pub dropout: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 60,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            batch_size: 64,
            hidden: Some(512),
            dropout: 0.2,
            seed: 7,
        }
    }
}

/// A dense layer, row-major `outputs × inputs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dense {
    inputs: usize,
    outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.inputs)
            .zip(&self.bias)
            .map(|(row, b)| row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + b)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Classifier {
    labels: Vec<String>,
    hidden: Option<Dense>,
    output: Dense,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("no training examples")]
    Empty,
    #[error("training needs at least two labels, got {0}")]
    OneLabel(usize),
    #[error("training failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl Classifier {
    /// Trains on `examples` (unit embeddings) with integer `targets` into
    /// `labels`.
    pub fn train(
        examples: &[Vec<f32>],
        targets: &[usize],
        labels: Vec<String>,
        options: &TrainOptions,
    ) -> Result<Self, TrainError> {
        let Some(dim) = examples.first().map(Vec::len) else {
            return Err(TrainError::Empty);
        };
        if labels.len() < 2 {
            return Err(TrainError::OneLabel(labels.len()));
        }
        let device = Device::Cpu;
        let n = examples.len();
        let flat: Vec<f32> = examples.iter().flatten().copied().collect();
        let x_all = Tensor::from_vec(flat, (n, dim), &device)?;
        let y_all = Tensor::from_vec(
            targets.iter().map(|&t| t as u32).collect::<Vec<_>>(),
            n,
            &device,
        )?;
        let mut rng = SplitMix(options.seed);
        let init = |rows: usize, cols: usize, rng: &mut SplitMix| -> candle_core::Result<Var> {
            // Glorot-uniform, from our own seeded generator so training is
            // reproducible.
            let limit = (6.0 / (rows + cols) as f32).sqrt();
            let values = (0..rows * cols)
                .map(|_| (rng.unit() * 2.0 - 1.0) * limit)
                .collect();
            Var::from_tensor(&Tensor::from_vec(values, (rows, cols), &device)?)
        };
        let (hidden, out_inputs) = match options.hidden {
            Some(width) => (
                Some((
                    init(dim, width, &mut rng)?,
                    Var::zeros(width, DType::F32, &device)?,
                )),
                width,
            ),
            None => (None, dim),
        };
        let out_w = init(out_inputs, labels.len(), &mut rng)?;
        let out_b = Var::zeros(labels.len(), DType::F32, &device)?;
        let mut vars = vec![out_w.clone(), out_b.clone()];
        if let Some((w, b)) = &hidden {
            vars.extend([w.clone(), b.clone()]);
        }
        let mut optimizer = AdamW::new(
            vars,
            ParamsAdamW {
                lr: options.learning_rate,
                weight_decay: options.weight_decay,
                ..Default::default()
            },
        )?;
        let mut order: Vec<u32> = (0..n as u32).collect();
        for _ in 0..options.epochs {
            rng.shuffle(&mut order);
            for batch in order.chunks(options.batch_size.max(1)) {
                let index = Tensor::new(batch, &device)?;
                let x = x_all.index_select(&index, 0)?;
                let y = y_all.index_select(&index, 0)?;
                let mut h = x;
                if let Some((w, b)) = &hidden {
                    h = h
                        .matmul(w.as_tensor())?
                        .broadcast_add(b.as_tensor())?
                        .relu()?;
                    if options.dropout > 0.0 {
                        // Our own mask rather than candle's dropout, which
                        // draws from an unseeded generator: training must
                        // give the same model twice.
                        let p = options.dropout;
                        let mask: Vec<f32> = (0..h.elem_count())
                            .map(|_| if rng.unit() < p { 0.0 } else { 1.0 / (1.0 - p) })
                            .collect();
                        let mask = Tensor::from_vec(mask, h.shape(), &device)?;
                        h = (h * mask)?;
                    }
                }
                let logits = h
                    .matmul(out_w.as_tensor())?
                    .broadcast_add(out_b.as_tensor())?;
                let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
                optimizer.backward_step(&loss)?;
            }
        }
        let dense = |w: &Var, b: &Var| -> candle_core::Result<Dense> {
            let (inputs, outputs) = w.dims2()?;
            Ok(Dense {
                inputs,
                outputs,
                // Stored transposed: one row per output.
                weight: w.t()?.contiguous()?.flatten_all()?.to_vec1()?,
                bias: b.to_vec1()?,
            })
        };
        Ok(Self {
            hidden: hidden.as_ref().map(|(w, b)| dense(w, b)).transpose()?,
            output: dense(&out_w, &out_b)?,
            labels,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        match &self.hidden {
            Some(hidden) => {
                let h: Vec<f32> = hidden.apply(x).into_iter().map(|v| v.max(0.0)).collect();
                self.output.apply(&h)
            }
            None => self.output.apply(x),
        }
    }

    /// Class probabilities, in the order of [`Classifier::labels`].
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        softmax(&self.logits(x))
    }
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.truncate(k);
    order
}

/// A tiny seeded generator; training (and the generated history of
/// `bench insights`) must not depend on the OS's entropy.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(top_k(&p, 2), vec![1, 2]);
        // Large logits must not overflow.
        let p = softmax(&[1000.0, 1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn learns_a_separable_problem() {
        // Two clusters around opposite unit vectors.
        let examples: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { 1.0 } else { -1.0 };
                vec![s, 0.1 * (i as f32 % 3.0), 0.0]
            })
            .collect();
        let targets: Vec<usize> = (0..40).map(|i| i % 2).collect();
        for hidden in [None, Some(8)] {
            let options = TrainOptions {
                epochs: 100,
                learning_rate: 0.05,
                hidden,
                ..Default::default()
            };
            let model =
                Classifier::train(&examples, &targets, vec!["a".into(), "b".into()], &options)
                    .unwrap();
            assert!(model.predict(&[1.0, 0.0, 0.0])[0] > 0.9);
            assert!(model.predict(&[-1.0, 0.0, 0.0])[1] > 0.9);
        }
    }

    #[test]
    fn training_twice_gives_the_same_model() {
        let examples: Vec<Vec<f32>> = (0..30)
            .map(|i| vec![(i % 3) as f32, (i % 5) as f32 * 0.1, 1.0])
            .collect();
        let targets: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let options = TrainOptions {
            epochs: 5,
            hidden: Some(8),
            dropout: 0.5,
            ..Default::default()
        };
        let labels = || vec!["a".into(), "b".into(), "c".into()];
        let first = Classifier::train(&examples, &targets, labels(), &options).unwrap();
        let second = Classifier::train(&examples, &targets, labels(), &options).unwrap();
        assert_eq!(
            first.logits(&[1.0, 0.2, 1.0]),
            second.logits(&[1.0, 0.2, 1.0])
        );
    }

    #[test]
    fn refuses_degenerate_training_sets() {
        let err = Classifier::train(&[], &[], vec!["a".into(), "b".into()], &Default::default());
        assert!(matches!(err, Err(TrainError::Empty)));
        let err = Classifier::train(&[vec![1.0]], &[0], vec!["a".into()], &Default::default());
        assert!(matches!(err, Err(TrainError::OneLabel(1))));
    }
}
