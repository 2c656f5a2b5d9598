//! Frontdesk patch (see vendor/README.md): sequences of different lengths
//! decode in one batch.
//!
//! Upstream batches only sequences of equal length, so customers whose
//! replies are at different positions took turns, one forward pass each,
//! and decoding N at once was no faster than one after another. With this
//! on, every sequence in the decode phase joins one batch: each sequence's
//! KV rows are placed so that they end at the same position (left padding),
//! and the model masks the padding out. The attention kernel starts each
//! sequence's sums at its first kept position, so a sequence gets the same
//! numbers as alone.
//!
//! Off by default (upstream behaviour); the application turns it on for a
//! model whose forward builds the mask (the quantized llama architecture).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use candle_core::{DType, Device, Result, Tensor};

use crate::{
    kv_cache::{KvCache, NormalCache, SingleCache},
    sequence::Sequence,
};

static ENABLED: AtomicBool = AtomicBool::new(false);
static PADDED_STEPS: AtomicUsize = AtomicUsize::new(0);
static PROMPTS_BESIDE_DECODE: AtomicUsize = AtomicUsize::new(0);

/// Turns batching of different lengths on or off for the whole process.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How many decode steps so far ran sequences of different lengths together.
pub fn padded_steps() -> usize {
    PADDED_STEPS.load(Ordering::Relaxed)
}

/// How many engine steps so far ran a prompt in the same step as the
/// decoding batch (the scheduler's side of this patch).
pub fn prompts_beside_decode() -> usize {
    PROMPTS_BESIDE_DECODE.load(Ordering::Relaxed)
}

pub(crate) fn count_prompt_beside_decode() {
    PROMPTS_BESIDE_DECODE.fetch_add(1, Ordering::Relaxed);
}

/// The attention mask for one decode step of a batch whose KV cache holds
/// `past` rows: sequence `i`, at position `start_offsets[i]`, keeps the last
/// `start_offsets[i] + 1` of the `past + 1` rows. `None` when no sequence is
/// padded (every batch upstream makes).
pub(crate) fn decode_mask(
    start_offsets: &[usize],
    past: usize,
    dtype: DType,
    device: &Device,
) -> Result<Option<Tensor>> {
    if start_offsets.len() < 2 || start_offsets.iter().all(|&offset| offset == past) {
        return Ok(None);
    }
    let columns = past + 1;
    let mut mask = vec![0f32; start_offsets.len() * columns];
    for (row, &offset) in mask.chunks_mut(columns).zip(start_offsets) {
        row[..past.saturating_sub(offset)].fill(f32::NEG_INFINITY);
    }
    let mask = Tensor::from_vec(mask, (start_offsets.len(), 1, 1, columns), device)?;
    PADDED_STEPS.fetch_add(1, Ordering::Relaxed);
    mask.to_dtype(dtype).map(Some)
}

/// One batch cache for sequences whose caches differ in length or layout,
/// each sequence's rows ending at the longest one's end. `None` when
/// upstream's batching fits (equal lengths, same capacity, contiguous) or
/// a layer is not a plain KV cache.
pub(crate) fn left_padded_batch(seqs: &mut [&mut Sequence]) -> Result<Option<NormalCache>> {
    let n_layers = seqs[0].normal_cache().len();
    let mut layers = Vec::with_capacity(n_layers);
    let mut uniform = true;
    for layer in 0..n_layers {
        let mut sources = Vec::with_capacity(seqs.len());
        for seq in seqs.iter_mut() {
            match seq.normal_cache().get(layer) {
                Some(Some(KvCache::Normal { k, v })) if k.all_data.is_some() => {
                    sources.push((k.clone(), v.clone()))
                }
                _ => return Ok(None),
            }
        }
        let (first_k, _) = &sources[0];
        uniform &= sources.iter().all(|(k, v)| {
            k.current_seq_len == first_k.current_seq_len
                && k.capacity_seq_len == first_k.capacity_seq_len
                && k.all_data.as_ref().is_some_and(Tensor::is_contiguous)
                && v.all_data.as_ref().is_some_and(Tensor::is_contiguous)
        });
        layers.push(sources);
    }
    if uniform {
        return Ok(None);
    }
    let mut caches = Vec::with_capacity(n_layers);
    for sources in layers {
        let keys: Vec<&SingleCache> = sources.iter().map(|(k, _)| k).collect();
        let values: Vec<&SingleCache> = sources.iter().map(|(_, v)| v).collect();
        let (Some(k), Some(v)) = (pad_left(&keys)?, pad_left(&values)?) else {
            return Ok(None);
        };
        caches.push(KvCache::Normal { k, v });
    }
    Ok(Some(NormalCache(caches)))
}

/// The caches of one layer (one sequence each) in one tensor, left-padded.
fn pad_left(caches: &[&SingleCache]) -> Result<Option<SingleCache>> {
    let first = caches[0];
    let dim = first.dim;
    let longest = caches.iter().map(|c| c.current_seq_len).max().unwrap_or(0);
    // Room for the next rows, in the steps the cache grows by anyway.
    let capacity = (longest + 1)
        .next_multiple_of(NormalCache::CACHE_GROW_SIZE)
        .min(first.max_seq_len)
        .max(longest);
    let Some(template) = first.all_data.as_ref() else {
        return Ok(None);
    };
    let mut shape = template.dims().to_vec();
    if shape[0] != 1 || dim == 0 {
        return Ok(None);
    }
    shape[0] = caches.len();
    shape[dim] = capacity;
    let batch = Tensor::zeros(shape, template.dtype(), template.device())?;
    for (i, cache) in caches.iter().enumerate() {
        let Some(data) = cache.all_data.as_ref() else {
            return Ok(None);
        };
        let len = cache.current_seq_len;
        if len == 0 {
            continue;
        }
        let rows = data.narrow(dim, 0, len)?;
        let rows = if rows.is_contiguous() {
            rows
        } else {
            rows.force_contiguous()?
        };
        batch.narrow(0, i, 1)?.slice_set(&rows, dim, longest - len)?;
    }
    Ok(Some(SingleCache {
        all_data: Some(batch),
        dim,
        current_seq_len: longest,
        capacity_seq_len: capacity,
        max_seq_len: first.max_seq_len,
    }))
}

/// Sequence `i`'s rows in a batch cache after a decode step, given how
/// many rows it held before the step: a view from its first row, with the
/// same capacity left after it.
pub(crate) fn unpad(cache: &SingleCache, batch_row: Tensor, rows_before: usize) -> Result<SingleCache> {
    let pad = cache.current_seq_len.saturating_sub(rows_before + 1);
    if pad == 0 {
        return Ok(SingleCache {
            all_data: Some(batch_row),
            ..cache.clone()
        });
    }
    let capacity = cache.capacity_seq_len - pad;
    Ok(SingleCache {
        all_data: Some(batch_row.narrow(cache.dim, pad, capacity)?),
        dim: cache.dim,
        current_seq_len: cache.current_seq_len - pad,
        capacity_seq_len: capacity,
        max_seq_len: cache.max_seq_len,
    })
}
