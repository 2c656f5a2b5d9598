//! A BERT-family encoder forward pass in plain Rust over int8 dense layers
//! (see `int8.rs` for why not candle's). It reads the same Hugging Face
//! layout and config as candle-transformers' `BertModel`, and a test checks
//! that both give the same embeddings.
//!
//! Sequences are packed without padding: the dense layers see only real
//! tokens, and attention runs per sequence.

use std::path::Path;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

use super::int8::Int8Linear;
use super::vectors::dot;

pub struct Bert {
    hidden: usize,
    heads: usize,
    act: HiddenAct,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0: every input is a single sentence.
    token_type: Vec<f32>,
    max_positions: usize,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// One transformer layer's weights in f32, as stored: what training starts
/// from and what a trained layer is kept as (`sentiment_layer.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// Query, key and value stacked: `3h × h`, then their `3h` biases.
    pub qkv: Vec<f32>,
    pub qkv_bias: Vec<f32>,
    pub attention_out: Vec<f32>,
    pub attention_out_bias: Vec<f32>,
    pub attention_norm: Vec<f32>,
    pub attention_norm_bias: Vec<f32>,
    /// `inner × h`.
    pub intermediate: Vec<f32>,
    pub intermediate_bias: Vec<f32>,
    /// `h × inner`.
    pub output: Vec<f32>,
    pub output_bias: Vec<f32>,
    pub output_norm: Vec<f32>,
    pub output_norm_bias: Vec<f32>,
}

impl LayerWeights {
    /// Builds every tensor from `take(name, dims)`, in the order and with
    /// the names of `tensors`.
    pub fn from_tensors(
        shape: LayerShape,
        mut take: impl FnMut(&'static str, &[usize]) -> candle_core::Result<Vec<f32>>,
    ) -> candle_core::Result<Self> {
        let (h, inner) = (shape.hidden, shape.inner);
        Ok(Self {
            qkv: take("qkv", &[3 * h, h])?,
            qkv_bias: take("qkv_bias", &[3 * h])?,
            attention_out: take("attention_out", &[h, h])?,
            attention_out_bias: take("attention_out_bias", &[h])?,
            attention_norm: take("attention_norm", &[h])?,
            attention_norm_bias: take("attention_norm_bias", &[h])?,
            intermediate: take("intermediate", &[inner, h])?,
            intermediate_bias: take("intermediate_bias", &[inner])?,
            output: take("output", &[h, inner])?,
            output_bias: take("output_bias", &[h])?,
            output_norm: take("output_norm", &[h])?,
            output_norm_bias: take("output_norm_bias", &[h])?,
        })
    }

    /// Every tensor with its name, in a fixed order.
    pub fn tensors(&self) -> [(&'static str, &[f32]); 12] {
        [
            ("qkv", &self.qkv),
            ("qkv_bias", &self.qkv_bias),
            ("attention_out", &self.attention_out),
            ("attention_out_bias", &self.attention_out_bias),
            ("attention_norm", &self.attention_norm),
            ("attention_norm_bias", &self.attention_norm_bias),
            ("intermediate", &self.intermediate),
            ("intermediate_bias", &self.intermediate_bias),
            ("output", &self.output),
            ("output_bias", &self.output_bias),
            ("output_norm", &self.output_norm),
            ("output_norm_bias", &self.output_norm_bias),
        ]
    }
}

/// The shape a layer's weights have, from the model's config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerShape {
    pub hidden: usize,
    pub inner: usize,
    pub heads: usize,
    pub eps: f32,
}

impl LayerShape {
    pub fn of(config: &Config) -> Self {
        Self {
            hidden: config.hidden_size,
            inner: config.intermediate_size,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
        }
    }
}

pub struct Layer {
    /// Query, key and value in one matrix: one pass over the input.
    qkv: Int8Linear,
    attention_out: Int8Linear,
    attention_norm: LayerNorm,
    intermediate: Int8Linear,
    output: Int8Linear,
    output_norm: LayerNorm,
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

/// Reads named tensors as f32, with or without the `bert.` style prefix
/// some checkpoints carry.
struct Weights {
    file: MmapedSafetensors,
    prefix: String,
}

impl Weights {
    fn get(&self, name: &str, len: usize) -> candle_core::Result<Vec<f32>> {
        let tensor = self
            .file
            .load(&format!("{}{name}", self.prefix), &Device::Cpu)?;
        let values = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        if values.len() != len {
            candle_core::bail!("{name} has {} values, expected {len}", values.len());
        }
        Ok(values)
    }

    fn norm(&self, name: &str, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.get(&format!("{name}.weight"), size)?,
            bias: self.get(&format!("{name}.bias"), size)?,
            eps: eps as f32,
        })
    }

    fn layer(&self, i: usize, shape: LayerShape) -> candle_core::Result<LayerWeights> {
        let p = format!("encoder.layer.{i}");
        LayerWeights::from_tensors(shape, |name, dims| {
            let len = dims.iter().product();
            let get = |name: &str, len| self.get(&format!("{p}.{name}"), len);
            // Query, key and value are three tensors in the file.
            let stacked = |suffix: &str| -> candle_core::Result<Vec<f32>> {
                let mut values = Vec::with_capacity(len);
                for part in ["query", "key", "value"] {
                    values.extend(get(&format!("attention.self.{part}.{suffix}"), len / 3)?);
                }
                Ok(values)
            };
            match name {
                "qkv" => stacked("weight"),
                "qkv_bias" => stacked("bias"),
                "attention_out" => get("attention.output.dense.weight", len),
                "attention_out_bias" => get("attention.output.dense.bias", len),
                "attention_norm" => get("attention.output.LayerNorm.weight", len),
                "attention_norm_bias" => get("attention.output.LayerNorm.bias", len),
                "intermediate" => get("intermediate.dense.weight", len),
                "intermediate_bias" => get("intermediate.dense.bias", len),
                "output" => get("output.dense.weight", len),
                "output_bias" => get("output.dense.bias", len),
                "output_norm" => get("output.LayerNorm.weight", len),
                _ => get("output.LayerNorm.bias", len),
            }
        })
    }

    fn open(weights: &Path, config: &Config) -> candle_core::Result<Self> {
        // SAFETY: the weights file is memory-mapped read-only only while
        // loading; everything is copied out before the caller returns.
        let file = unsafe { MmapedSafetensors::new(weights)? };
        let prefix = match &config.model_type {
            Some(model_type) if file.get("embeddings.word_embeddings.weight").is_err() => {
                format!("{model_type}.")
            }
            _ => String::new(),
        };
        Ok(Self { file, prefix })
    }
}

impl Layer {
    /// The int8 layer the forward pass runs.
    pub fn quantize(w: &LayerWeights, shape: LayerShape) -> Self {
        let (h, inner) = (shape.hidden, shape.inner);
        let norm = |weight: &[f32], bias: &[f32]| LayerNorm {
            weight: weight.to_vec(),
            bias: bias.to_vec(),
            eps: shape.eps,
        };
        Self {
            qkv: Int8Linear::quantize(&w.qkv, w.qkv_bias.clone(), 3 * h, h),
            attention_out: Int8Linear::quantize(
                &w.attention_out,
                w.attention_out_bias.clone(),
                h,
                h,
            ),
            attention_norm: norm(&w.attention_norm, &w.attention_norm_bias),
            intermediate: Int8Linear::quantize(
                &w.intermediate,
                w.intermediate_bias.clone(),
                inner,
                h,
            ),
            output: Int8Linear::quantize(&w.output, w.output_bias.clone(), h, inner),
            output_norm: norm(&w.output_norm, &w.output_norm_bias),
        }
    }
}

/// Layer `i` of the model in `weights`, in f32.
pub fn read_layer(weights: &Path, config: &Config, i: usize) -> candle_core::Result<LayerWeights> {
    Weights::open(weights, config)?.layer(i, LayerShape::of(config))
}

impl Bert {
    pub fn load(weights: &Path, config: &Config) -> candle_core::Result<Self> {
        let w = Weights::open(weights, config)?;
        let h = config.hidden_size;
        if config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
            candle_core::bail!("hidden_size {h} is not a multiple of num_attention_heads");
        }
        if config.num_hidden_layers == 0 {
            candle_core::bail!("the encoder has no layers");
        }
        let shape = LayerShape::of(config);
        let layers = (0..config.num_hidden_layers)
            .map(|i| Ok(Layer::quantize(&w.layer(i, shape)?, shape)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            hidden: h,
            heads: config.num_attention_heads,
            act: config.hidden_act,
            word: w.get("embeddings.word_embeddings.weight", config.vocab_size * h)?,
            position: w.get(
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings * h,
            )?,
            token_type: w.get(
                "embeddings.token_type_embeddings.weight",
                config.type_vocab_size * h,
            )?[..h]
                .to_vec(),
            max_positions: config.max_position_embeddings,
            embedding_norm: w.norm("embeddings.LayerNorm", h, config.layer_norm_eps)?,
            layers,
        })
    }

    /// The last hidden state of every token of every sequence, packed in
    /// order: `Σ len × hidden` values. Token ids must be in the vocabulary
    /// and sequences no longer than the model's positions.
    pub fn forward(&self, sequences: &[&[u32]]) -> Vec<f32> {
        self.forward_with(sequences, None).0
    }

    /// The last hidden states, and with a `branch` also what that layer
    /// makes of the states the last layer reads (an adapted top layer):
    /// both share every layer below.
    pub fn forward_with(
        &self,
        sequences: &[&[u32]],
        branch: Option<&Layer>,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        // Run on a rayon worker, so the dense layers' parallel loops find
        // the pool awake instead of waking it from outside 24 times.
        rayon::scope(|_| {
            let (below, last) = self.layers.split_at(self.layers.len() - 1);
            let (mut x, lengths) = self.run(sequences, below);
            let branched = branch.map(|b| {
                let mut y = x.clone();
                self.apply(b, &mut y, &lengths);
                y
            });
            self.apply(&last[0], &mut x, &lengths);
            (x, branched)
        })
    }

    /// The states the last layer reads, packed like `forward`'s output:
    /// what an adapted top layer trains on.
    pub fn states_below_top(&self, sequences: &[&[u32]]) -> Vec<f32> {
        rayon::scope(|_| self.run(sequences, &self.layers[..self.layers.len() - 1]).0)
    }

    fn run(&self, sequences: &[&[u32]], layers: &[Layer]) -> (Vec<f32>, Vec<usize>) {
        let h = self.hidden;
        let mut x = Vec::with_capacity(sequences.iter().map(|s| s.len()).sum::<usize>() * h);
        for ids in sequences {
            for (position, &id) in ids.iter().take(self.max_positions).enumerate() {
                let word = &self.word[id as usize * h..][..h];
                let pos = &self.position[position * h..][..h];
                x.extend((0..h).map(|i| word[i] + pos[i] + self.token_type[i]));
            }
        }
        self.embedding_norm.apply(&mut x);
        let lengths: Vec<usize> = sequences
            .iter()
            .map(|s| s.len().min(self.max_positions))
            .collect();
        for layer in layers {
            self.apply(layer, &mut x, &lengths);
        }
        (x, lengths)
    }

    fn apply(&self, layer: &Layer, x: &mut [f32], lengths: &[usize]) {
        let context = self.attention(&layer.qkv.forward(x), lengths);
        add_and_norm(
            x,
            &layer.attention_out.forward(&context),
            &layer.attention_norm,
        );
        let inner = layer
            .intermediate
            .forward_then(x, |row| activate(self.act, row));
        add_and_norm(x, &layer.output.forward(&inner), &layer.output_norm);
    }

    /// Scaled dot-product attention within each sequence, all heads; one
    /// task per query token.
    fn attention(&self, qkv: &[f32], lengths: &[usize]) -> Vec<f32> {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut context = vec![0f32; qkv.len() / 3];
        let mut start = 0;
        for &len in lengths {
            let sequence = &qkv[start * 3 * h..(start + len) * 3 * h];
            context[start * h..(start + len) * h]
                .par_chunks_mut(h)
                .zip(sequence.par_chunks(3 * h))
                .for_each(|(out, query)| {
                    let mut scores = vec![0f32; len];
                    for head in (0..h).step_by(d) {
                        let q = &query[head..head + d];
                        for (score, key) in scores.iter_mut().zip(sequence.chunks(3 * h)) {
                            *score = dot(q, &key[h + head..h + head + d]) * scale;
                        }
                        softmax(&mut scores);
                        let out = &mut out[head..head + d];
                        for (&p, value) in scores.iter().zip(sequence.chunks(3 * h)) {
                            let v = &value[2 * h + head..2 * h + head + d];
                            out.iter_mut().zip(v).for_each(|(o, v)| *o += p * v);
                        }
                    }
                });
            start += len;
        }
        context
    }
}

impl LayerNorm {
    fn apply(&self, x: &mut [f32]) {
        let n = self.weight.len();
        for row in x.chunks_exact_mut(n) {
            let mean = row.iter().sum::<f32>() / n as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

fn add_and_norm(x: &mut [f32], residual: &[f32], norm: &LayerNorm) {
    x.iter_mut().zip(residual).for_each(|(x, r)| *x += r);
    norm.apply(x);
}

fn activate(act: HiddenAct, x: &mut [f32]) {
    match act {
        HiddenAct::Gelu => x
            .iter_mut()
            .for_each(|v| *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2))),
        HiddenAct::GeluApproximate => x.iter_mut().for_each(|v| {
            let inner = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
            *v = 0.5 * *v * (1.0 + inner.tanh());
        }),
        HiddenAct::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

/// Abramowitz & Stegun 7.1.26: absolute error under 1.5e-7, far below
/// the int8 weights' own error, and much cheaper than an exact erf.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    y.copysign(x)
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut v = vec![1.0, 3.0, 2.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[1] > v[2] && v[2] > v[0]);
    }
}
