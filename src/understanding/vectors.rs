//! Vector maths for embeddings, shared by the encoder, the classifiers and
//! retrieval (its own module, so `bert.rs` and `encoder.rs` need not import
//! each other for it).

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// Dot product with eight partial sums, so the compiler can vectorise it
/// without reordering a single sum.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += a[i] * b[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_unit_vectors() {
        assert!((cosine(&[0.6, 0.8], &[0.6, 0.8]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        let long: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let expected: f32 = long.iter().map(|x| x * x).sum();
        assert!((dot(&long, &long) - expected).abs() < 1e-3);
    }
}
