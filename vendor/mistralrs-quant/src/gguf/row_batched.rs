//! Frontdesk patch (see vendor/README.md): candle's quantized matmul on the
//! CPU with the loops turned around, for inputs of a few rows.
//!
//! candle 0.10 multiplies one input row at a time, each in a parallel pass
//! over the whole weight, so N rows (N customers' next tokens decoded
//! together) read every weight N times and a batch was no faster than its
//! rows one after another. Here each block of weight rows is read once and
//! dotted with every input row while it is in cache. Every output value is
//! the very `vec_dot` candle computes, so results are identical.
//!
//! For Q8_0 weights on x86-64 (Frontdesk's converted models): with AVX-512
//! VNNI, a repacked copy of the weight and a kernel of its own
//! (`q8_0_packed`, not candle's rounding); with AVX2 only, a kernel that
//! reads each weight row once, front to back, and dots it with up to 4
//! input rows at a time: for each pair the numbers candle's
//! `vec_dot_q8_0_q8_0` computes, in the same order.

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8_0, GgmlType,
};
use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;
use std::sync::OnceLock;

use super::q8_0_packed;

/// Weight rows (output columns) one parallel task dots with every input row.
const COLUMNS_PER_TASK: usize = 64;
/// Input rows dotted with those weight rows before the next ones, so they
/// stay in the first-level cache.
const ROWS_PER_PASS: usize = 16;

/// `a` times the weight, for a CPU input of at least two rows in f32 and a
/// weight in a block format; `None` where candle's own kernel applies.
/// `packed` keeps a Q8_0 weight's repacked copy, made at the first call.
pub(crate) fn forward(
    w: &QMatMul,
    packed: &OnceLock<Option<q8_0_packed::Packed>>,
    a: &Tensor,
) -> Result<Option<Tensor>> {
    let QMatMul::QTensor(q) = w else {
        return Ok(None);
    };
    if !a.device().is_cpu() || a.dtype() != DType::F32 {
        return Ok(None);
    }
    let (n, k) = match q.shape().dims() {
        [n, k] => (*n, *k),
        _ => return Ok(None),
    };
    if a.dims().last() != Some(&k) {
        return Ok(None);
    }
    let m = a.elem_count() / k;
    let out = if let Some(packed) = packed_for(packed, q, n, k) {
        let input = a.flatten_all()?.to_vec1::<f32>()?;
        // SAFETY: `packed_for` checked `q8_0_packed::available()`.
        Some(unsafe { packed.matmul(m, &input) })
    } else if m < 2 && !(q.dtype() == GgmlDType::Q8_0 && q8_0::available()) {
        return Ok(None);
    } else {
        match q.dtype() {
            GgmlDType::Q4_0 => matmul::<BlockQ4_0>(m, k, n, a, q)?,
            GgmlDType::Q4_1 => matmul::<BlockQ4_1>(m, k, n, a, q)?,
            GgmlDType::Q5_0 => matmul::<BlockQ5_0>(m, k, n, a, q)?,
            GgmlDType::Q5_1 => matmul::<BlockQ5_1>(m, k, n, a, q)?,
            GgmlDType::Q8_0 => matmul::<BlockQ8_0>(m, k, n, a, q)?,
            GgmlDType::Q2K => matmul::<BlockQ2K>(m, k, n, a, q)?,
            GgmlDType::Q3K => matmul::<BlockQ3K>(m, k, n, a, q)?,
            GgmlDType::Q4K => matmul::<BlockQ4K>(m, k, n, a, q)?,
            GgmlDType::Q5K => matmul::<BlockQ5K>(m, k, n, a, q)?,
            GgmlDType::Q6K => matmul::<BlockQ6K>(m, k, n, a, q)?,
            _ => return Ok(None),
        }
    };
    let Some(out) = out else {
        return Ok(None);
    };
    let mut shape = a.dims().to_vec();
    *shape.last_mut().expect("a has dims") = n;
    Tensor::from_vec(out, shape, a.device()).map(Some)
}

/// The packed copy of a Q8_0 weight, made at the first call, where the CPU
/// runs the packed kernel and the shape fits it.
#[cfg(target_arch = "x86_64")]
fn packed_for<'a>(
    packed: &'a OnceLock<Option<q8_0_packed::Packed>>,
    q: &candle_core::quantized::QTensor,
    n: usize,
    k: usize,
) -> Option<&'a q8_0_packed::Packed> {
    if q.dtype() != GgmlDType::Q8_0 || k % 32 != 0 || !q8_0_packed::available() {
        return None;
    }
    packed
        .get_or_init(|| {
            let blocks = k / 32;
            let bytes = q.data().ok()?;
            let weight = weight_blocks::<BlockQ8_0>(&bytes, n, blocks)?;
            q8_0_packed::Packed::new(weight, n, blocks)
        })
        .as_ref()
}

/// The weight's bytes as its `n` rows of `blocks` blocks of `T`, or `None`
/// if their size or alignment is not that.
fn weight_blocks<T: GgmlType>(bytes: &[u8], n: usize, blocks: usize) -> Option<&[T]> {
    if bytes.len() != n * blocks * std::mem::size_of::<T>()
        || (bytes.as_ptr() as usize) % std::mem::align_of::<T>() != 0
    {
        return None;
    }
    // SAFETY: on the CPU a QTensor of T's dtype is a `Vec<T>` (candle's
    // `QStorage::Cpu`), whose bytes `data` borrows; size and alignment were
    // checked above, and the blocks are plain data.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, n * blocks) })
}

#[cfg(not(target_arch = "x86_64"))]
fn packed_for<'a>(
    _: &'a OnceLock<Option<q8_0_packed::Packed>>,
    _: &candle_core::quantized::QTensor,
    _: usize,
    _: usize,
) -> Option<&'a q8_0_packed::Packed> {
    None
}

fn matmul<T: GgmlType>(
    m: usize,
    k: usize,
    n: usize,
    a: &Tensor,
    q: &candle_core::quantized::QTensor,
) -> Result<Option<Vec<f32>>> {
    if k % T::BLCK_SIZE != 0 || T::BLCK_SIZE != T::VecDotType::BLCK_SIZE {
        return Ok(None);
    }
    let blocks = k / T::BLCK_SIZE;
    let bytes = q.data()?;
    let Some(weight) = weight_blocks::<T>(&bytes, n, blocks) else {
        return Ok(None);
    };

    let input = a.flatten_all()?.to_vec1::<f32>()?;
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == GgmlDType::Q8_0 && q8_0::available() {
        // SAFETY: T is BlockQ8_0 (its dtype).
        let weight = q8_0::blocks_of(unsafe { &*(weight as *const [T] as *const [BlockQ8_0]) });
        return Ok(Some(q8_0::matmul(m, n, blocks, weight, &input)));
    }
    let mut rows = vec![T::VecDotType::zeros(); m * blocks];
    for (row, quantized) in input.chunks(k).zip(rows.chunks_mut(blocks)) {
        T::VecDotType::from_float(row, quantized);
    }

    Ok(Some(by_column_tasks(m, n, COLUMNS_PER_TASK, |first_column, out| {
        let columns = out.len() / m;
        for pass in (0..m).step_by(ROWS_PER_PASS) {
            let pass_rows = pass..(pass + ROWS_PER_PASS).min(m);
            for c in 0..columns {
                let column = first_column + c;
                let w = &weight[column * blocks..(column + 1) * blocks];
                for row in pass_rows.clone() {
                    out[c * m + row] = T::vec_dot(k, w, &rows[row * blocks..(row + 1) * blocks]);
                }
            }
        }
    })))
}

/// The `m` x `n` product, computed column-major ([n][m]) by parallel tasks
/// that each own `columns_per_task` output columns (`task(first column,
/// its [columns][m] slice)`), returned row-major ([m][n]).
fn by_column_tasks(
    m: usize,
    n: usize,
    columns_per_task: usize,
    task: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut by_column = vec![0f32; n * m];
    by_column
        .par_chunks_mut(columns_per_task * m)
        .enumerate()
        .for_each(|(i, out)| task(i * columns_per_task, out));
    let mut out = vec![0f32; m * n];
    for (column, values) in by_column.chunks(m).enumerate() {
        for (row, value) in values.iter().enumerate() {
            out[row * n + column] = *value;
        }
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
mod q8_0 {
    pub(super) fn available() -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod q8_0 {
    use std::arch::x86_64::*;

    use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
    use half::f16;

    pub(super) use super::super::q8_0_packed::blocks_of;
    use super::super::q8_0_packed::Block;

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    const COLUMNS_PER_TASK: usize = 32;

    /// `out[row][column]` = dot(weight row `column`, input row `row`), each
    /// computed exactly as candle's AVX2 `vec_dot_q8_0_q8_0`.
    pub(super) fn matmul(m: usize, n: usize, blocks: usize, weight: &[Block], input: &[f32]) -> Vec<f32> {
        let mut rows = vec![BlockQ8_0::zeros(); m * blocks];
        BlockQ8_0::from_float(input, &mut rows);
        super::by_column_tasks(m, n, COLUMNS_PER_TASK, |first, out| {
            let columns = out.len() / m;
            let weight = &weight[first * blocks..(first + columns) * blocks];
            // SAFETY: `available()` was checked by the caller; the rows are
            // candle's `BlockQ8_0`.
            unsafe { columns_avx2(m, columns, blocks, weight, blocks_of(&rows), out) };
        })
    }

    /// One task's columns, column-major into `out` (`[columns][m]`): each
    /// weight row on its own, read front to back as one stream, dotted with
    /// the input rows 4 at a time (then 2, then 1). Reading 4 weight rows
    /// side by side (4 streams) was 20–30% slower for 1, 2, 8, 32 and 128
    /// input rows on this project's 2-core host.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn columns_avx2(m: usize, columns: usize, blocks: usize, weight: &[Block], rows: &[Block], out: &mut [f32]) {
        let y = |i: usize| &rows[i * blocks..(i + 1) * blocks];
        for c in 0..columns {
            let w = &weight[c * blocks..(c + 1) * blocks];
            let out = &mut out[c * m..(c + 1) * m];
            let mut r = 0;
            while r + 4 <= m {
                out[r..r + 4].copy_from_slice(&tile_avx2(w, [y(r), y(r + 1), y(r + 2), y(r + 3)]));
                r += 4;
            }
            if r + 2 <= m {
                out[r..r + 2].copy_from_slice(&tile_avx2(w, [y(r), y(r + 1)]));
                r += 2;
            }
            if r < m {
                out[r] = tile_avx2(w, [y(r)])[0];
            }
        }
    }

    /// Dots of one weight row with `R` input rows. For each pair the very
    /// steps of candle's `vec_dot_q8_0_q8_0` (avx.rs): per block the product
    /// of the scales, |w| times y signed like w, pairwise sums to i32, to
    /// f32, one fused multiply-add into the pair's sum; a horizontal sum at
    /// the end.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_avx2<const R: usize>(w: &[Block], y: [&[Block]; R]) -> [f32; R] {
        let mut acc = [_mm256_setzero_ps(); R];
        for (b, block) in w.iter().enumerate() {
            let wq = _mm256_loadu_si256(block.qs.as_ptr() as *const __m256i);
            let wd = f16::to_f32(block.d);
            let ax = _mm256_sign_epi8(wq, wq);
            for j in 0..R {
                let yb = y[j].get_unchecked(b);
                let yq = _mm256_loadu_si256(yb.qs.as_ptr() as *const __m256i);
                let d = _mm256_set1_ps(wd * f16::to_f32(yb.d));
                let sy = _mm256_sign_epi8(yq, wq);
                let q = _mm256_cvtepi32_ps(_mm256_madd_epi16(
                    _mm256_set1_epi16(1),
                    _mm256_maddubs_epi16(ax, sy),
                ));
                acc[j] = _mm256_fmadd_ps(d, q, acc[j]);
            }
        }
        acc.map(|a| hsum(a))
    }

    /// candle's `hsum_float_8`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum(x: __m256) -> f32 {
        let res = _mm256_extractf128_ps(x, 1);
        let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        let res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }
}
