//! Frontdesk patch (see vendor/README.md): Q8_0 weights repacked for
//! AVX-512 VNNI, eight weight rows (output columns) side by side.
//!
//! candle's layout keeps each weight row's 32-byte blocks together, so one
//! `vpdpbusd` sums products of one column only and every block ends in a
//! per-column conversion and scale (about six instructions per 32 products,
//! for every input row). Here the bytes of 8 columns' blocks are
//! interleaved four at a time: one `vpdpbusd` multiplies four input bytes,
//! broadcast, with four bytes of each of the 8 columns, so a block of 8
//! columns costs 8 of them plus one conversion and one multiply-add for
//! all 8 (about 12 instructions per 256 products).
//!
//! The weights are stored plus 128 (unsigned, as `vpdpbusd` wants its first
//! operand) and each input block's sum starts at −128·Σy, so a lane holds
//! the exact integer Σ w·y of its column's block. The value of each output
//! is Σ over blocks of (weight scale · input scale) · that integer, summed
//! in block order with one fused multiply-add per block: the same for any
//! number of input rows, but not candle's rounding (candle scales partial
//! sums of 8 lanes and adds them at the end).

use std::arch::x86_64::*;

use candle_core::quantized::k_quants::BlockQ8_0;
use half::f16;
use rayon::prelude::*;

/// Output columns packed together.
const COLUMNS: usize = 8;
/// Column groups one parallel task computes.
const GROUPS_PER_TASK: usize = 4;

/// candle's `BlockQ8_0`, whose fields are private to candle: a scale and
/// 32 signed bytes (`repr(C)`, 34 bytes, asserted below). Also read by
/// `row_batched`'s AVX2 kernel.
#[repr(C)]
pub(super) struct Block {
    pub(super) d: f16,
    pub(super) qs: [i8; 32],
}
const _: () = assert!(std::mem::size_of::<Block>() == 34);
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

/// candle's blocks read through `Block`.
pub(super) fn blocks_of(xs: &[BlockQ8_0]) -> &[Block] {
    // SAFETY: candle's `BlockQ8_0` has `Block`'s layout (asserted above).
    unsafe { std::slice::from_raw_parts(xs.as_ptr() as *const Block, xs.len()) }
}

/// One 32-long block of 8 columns: `qs[g]` holds bytes `4g..4g+4` of each
/// column in turn (plus 128), then the 8 scales.
#[repr(C, align(32))]
struct Group {
    qs: [[u8; 32]; 8],
    d: [f32; COLUMNS],
}

/// A Q8_0 weight (`n` rows of `blocks` blocks) in the packed layout,
/// `[n / 8][blocks]` groups.
pub(crate) struct Packed {
    n: usize,
    blocks: usize,
    groups: Vec<Group>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} x {} blocks)", self.n, self.blocks)
    }
}

/// The output's start, shared by the tasks that write disjoint columns.
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: tasks write disjoint elements, and the buffer outlives them.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}
impl Output {
    /// A method, so that closures capture the wrapper (`Sync`), not the
    /// pointer field (not `Sync`) as they would for `output.0`.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// An input row's block as the kernel reads it: the quantized bytes, the
/// scale in f32 and −128 times the bytes' sum.
#[repr(C)]
struct Row {
    qs: [i8; 32],
    d: f32,
    start: i32,
}

/// Whether this CPU runs the packed kernel.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("avx512vnni")
        && is_x86_feature_detected!("avx512vl")
}

impl Packed {
    /// `weight` (`n` x `blocks` of candle's `BlockQ8_0`) repacked, or
    /// `None` when `n` is not a whole number of groups (or there are no
    /// blocks).
    pub(crate) fn new(weight: &[BlockQ8_0], n: usize, blocks: usize) -> Option<Self> {
        if n % COLUMNS != 0 || blocks == 0 || weight.len() != n * blocks {
            return None;
        }
        let weight = blocks_of(weight);
        let mut groups: Vec<Group> = (0..n / COLUMNS * blocks)
            .map(|_| Group {
                qs: [[0; 32]; 8],
                d: [0.; COLUMNS],
            })
            .collect();
        groups
            .par_chunks_mut(blocks)
            .enumerate()
            .for_each(|(group, out)| {
                for (b, packed) in out.iter_mut().enumerate() {
                    for c in 0..COLUMNS {
                        let block = &weight[(group * COLUMNS + c) * blocks + b];
                        packed.d[c] = block.d.to_f32();
                        for g in 0..8 {
                            for j in 0..4 {
                                packed.qs[g][c * 4 + j] = (block.qs[g * 4 + j] as u8) ^ 0x80;
                            }
                        }
                    }
                }
            });
        Some(Self { n, blocks, groups })
    }

    /// `input` (`m` rows of `blocks * 32` values) times the weight,
    /// `[m][n]`.
    ///
    /// # Safety
    /// `available()` must be true.
    pub(crate) unsafe fn matmul(&self, m: usize, input: &[f32]) -> Vec<f32> {
        let rows = quantize(input);
        let (n, blocks) = (self.n, self.blocks);
        let groups = n / COLUMNS;
        // Written in place, not zeroed first: the logits of 8 rows are 1.5 MB,
        // and fresh zeroed pages every step showed as page faults.
        let mut out: Vec<f32> = Vec::with_capacity(m * n);
        let base = Output(out.as_mut_ptr());
        (0..groups.div_ceil(GROUPS_PER_TASK))
            .into_par_iter()
            .for_each(|task| {
                let first = task * GROUPS_PER_TASK;
                let last = (first + GROUPS_PER_TASK).min(groups);
                let weight = &self.groups[first * blocks..last * blocks];
                // SAFETY: the caller checked `available()`; each task writes
                // only its own groups' columns of every row, inside `m * n`.
                unsafe { columns(m, n, first, last - first, blocks, weight, &rows, base.get()) };
            });
        // SAFETY: the tasks wrote every one of the `m * n` values.
        unsafe { out.set_len(m * n) };
        out
    }
}

/// candle's `BlockQ8_0::from_float` (quantize_row_q8_0) for every input
/// block, in AVX2 (candle rounds each value with `f32::round`, a libm call;
/// a plain loop did not vectorise and took 7% of the CPU with 8 rows), with
/// the sums the kernel starts from. The same numbers: the same largest
/// magnitude, scale and inverse, each value rounded half away from zero
/// from its exact fraction, the scale through f16 as candle stores it.
fn quantize(input: &[f32]) -> Vec<Row> {
    // SAFETY: `matmul`'s caller checked `available()`, which includes AVX2.
    input
        .chunks_exact(32)
        .map(|xs| unsafe { quantize_block(xs) })
        .collect()
}

#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_block(xs: &[f32]) -> Row {
    let x: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(xs[i * 8..].as_ptr()));
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let m = x.iter().fold(_mm256_setzero_ps(), |m, x| {
        _mm256_max_ps(m, _mm256_and_ps(*x, abs))
    });
    let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    let d = amax / ((1 << 7) - 1) as f32;
    let id = _mm256_set1_ps(if d != 0f32 { 1. / d } else { 0. });
    let (half, one, sign) = (
        _mm256_set1_ps(0.5),
        _mm256_set1_ps(1.0),
        _mm256_set1_ps(-0.0),
    );
    let q: [__m256i; 4] = std::array::from_fn(|i| {
        let v = _mm256_mul_ps(x[i], id);
        let t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        let away = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(v, t), abs), half, _CMP_GE_OQ);
        let step = _mm256_and_ps(away, _mm256_or_ps(one, _mm256_and_ps(v, sign)));
        _mm256_cvttps_epi32(_mm256_add_ps(t, step))
    });
    let sum = q
        .iter()
        .fold(_mm256_setzero_si256(), |s, q| _mm256_add_epi32(s, *q));
    let sum = _mm_add_epi32(
        _mm256_castsi256_si128(sum),
        _mm256_extracti128_si256(sum, 1),
    );
    let sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
    let sum = _mm_cvtsi128_si32(_mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01)));
    // i32 to i16 to i8 (the values lie in -127..=127), then the lanes put
    // back in order (the packs interleave 128-bit halves).
    let bytes = _mm256_packs_epi16(
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    );
    let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    let mut qs = [0i8; 32];
    _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, bytes);
    Row {
        qs,
        d: f16::from_f32(d).to_f32(),
        start: -128 * sum,
    }
}

/// One task's `groups` column groups, from group `first`, into the
/// row-major `m` x `n` output at `out`, the input rows 4 at a time (then 2,
/// then 1); a group's weights (at most a few KB) stay in the first-level
/// cache between those passes.
///
/// # Safety
/// `out` must hold `m * n` values and no other task may write these columns.
#[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn columns(
    m: usize,
    n: usize,
    first: usize,
    groups: usize,
    blocks: usize,
    weight: &[Group],
    rows: &[Row],
    out: *mut f32,
) {
    let y = |i: usize| &rows[i * blocks..(i + 1) * blocks];
    for group in 0..groups {
        let w = &weight[group * blocks..(group + 1) * blocks];
        let column = (first + group) * COLUMNS;
        let store = |r: usize, sums: &[__m256]| {
            for (i, sum) in sums.iter().enumerate() {
                _mm256_storeu_ps(out.add((r + i) * n + column), *sum);
            }
        };
        let mut r = 0;
        while r + 4 <= m {
            store(r, &tile(w, [y(r), y(r + 1), y(r + 2), y(r + 3)]));
            r += 4;
        }
        if r + 2 <= m {
            store(r, &tile(w, [y(r), y(r + 1)]));
            r += 2;
        }
        if r < m {
            store(r, &tile(w, [y(r)]));
        }
    }
}

/// The 8 columns of one group dotted with `R` input rows: per block, the
/// exact integer sums in two chains of four `vpdpbusd` (half the wait on
/// each other), then (weight scales · input scale) · sums added in.
#[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
#[inline]
unsafe fn tile<const R: usize>(w: &[Group], y: [&[Row]; R]) -> [__m256; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, group) in w.iter().enumerate() {
        let wq: [__m256i; 8] =
            std::array::from_fn(|g| _mm256_load_si256(group.qs[g].as_ptr() as *const __m256i));
        let wd = _mm256_load_ps(group.d.as_ptr());
        for j in 0..R {
            let row = y[j].get_unchecked(b);
            let bytes = row.qs.as_ptr() as *const i32;
            let four = |g: usize| _mm256_set1_epi32(std::ptr::read_unaligned(bytes.add(g)));
            let mut even = _mm256_set1_epi32(row.start);
            let mut odd = _mm256_setzero_si256();
            for g in (0..8).step_by(2) {
                even = _mm256_dpbusd_epi32(even, wq[g], four(g));
                odd = _mm256_dpbusd_epi32(odd, wq[g + 1], four(g + 1));
            }
            let sums = _mm256_cvtepi32_ps(_mm256_add_epi32(even, odd));
            let d = _mm256_mul_ps(wd, _mm256_set1_ps(row.d));
            acc[j] = _mm256_fmadd_ps(d, sums, acc[j]);
        }
    }
    acc
}
