//! Dense retrieval: every passage's sentence embedding, searched by cosine
//! similarity, and a cache so only new or edited passages are embedded.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Passage;
use crate::understanding::encoder::{Embedding, Encoder, EncoderError};

/// What the encoder reads of a passage: the article's title says what the
/// passage answers, the heading and text say how.
pub fn embedding_text(passage: &Passage) -> String {
    if passage.heading.is_empty() {
        format!("{}\n{}", passage.article_title, passage.text)
    } else {
        format!(
            "{}: {}\n{}",
            passage.article_title, passage.heading, passage.text
        )
    }
}

/// Passage embeddings in one row-major matrix, in passage order.
pub struct DenseIndex {
    dim: usize,
    vectors: Vec<f32>,
}

impl DenseIndex {
    pub fn new(dim: usize, embeddings: &[Embedding]) -> Self {
        DenseIndex {
            dim,
            vectors: embeddings.iter().flatten().copied().collect(),
        }
    }

    /// Cosine similarity of the query with every passage (all unit vectors).
    /// Brute force: a few microseconds per thousand passages.
    pub fn similarities(&self, query: &[f32]) -> Vec<f32> {
        if self.dim == 0 || query.len() != self.dim {
            return Vec::new();
        }
        self.vectors
            .chunks_exact(self.dim)
            .map(|row| row.iter().zip(query).map(|(a, b)| a * b).sum())
            .collect()
    }
}

type Key = [u8; 16];

/// Embeddings by passage text, kept on disk between runs. Keyed on the
/// encoder's fingerprint too, so a new encoder never reuses old vectors.
pub struct EmbeddingCache {
    path: Option<PathBuf>,
    fingerprint: String,
    dim: usize,
    vectors: HashMap<Key, Embedding>,
    dirty: bool,
}

const MAGIC: &[u8; 8] = b"FDEMB001";

impl EmbeddingCache {
    /// An empty cache that lives only in memory.
    pub fn in_memory(encoder: &Encoder) -> Self {
        EmbeddingCache::empty(encoder.fingerprint(), encoder.dim())
    }

    fn empty(fingerprint: &str, dim: usize) -> Self {
        EmbeddingCache {
            path: None,
            fingerprint: fingerprint.to_string(),
            dim,
            vectors: HashMap::new(),
            dirty: false,
        }
    }

    /// Opens the cache file; a missing, foreign or damaged file starts empty.
    pub fn open(path: &Path, encoder: &Encoder) -> Self {
        EmbeddingCache::open_for(path, encoder.fingerprint(), encoder.dim())
    }

    fn open_for(path: &Path, fingerprint: &str, dim: usize) -> Self {
        let mut cache = EmbeddingCache::empty(fingerprint, dim);
        cache.path = Some(path.to_path_buf());
        match cache.read(path) {
            Ok(n) => tracing::debug!(cached = n, "passage embeddings loaded"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(cache = %path.display(), error = %e, "ignoring the passage embedding cache")
            }
        }
        cache
    }

    fn key(&self, text: &str) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(self.fingerprint.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.finalize()[..16].try_into().expect("16 bytes")
    }

    /// Embeddings for `texts`, computing only those not cached.
    pub fn embed(
        &mut self,
        encoder: &Encoder,
        texts: &[String],
    ) -> Result<Vec<Embedding>, EncoderError> {
        let keys: Vec<Key> = texts.iter().map(|t| self.key(t)).collect();
        let missing: Vec<usize> = (0..texts.len())
            .filter(|&i| !self.vectors.contains_key(&keys[i]))
            .collect();
        if !missing.is_empty() {
            let batch: Vec<&str> = missing.iter().map(|&i| texts[i].as_str()).collect();
            for (&i, embedding) in missing.iter().zip(encoder.embed_all(&batch)?) {
                self.vectors.insert(keys[i], embedding);
            }
            self.dirty = true;
        }
        Ok(keys.iter().map(|k| self.vectors[k].clone()).collect())
    }

    /// Keeps only the given texts' vectors and writes the file if anything
    /// changed. A failed write costs the next start some embedding time, so
    /// it is logged, not fatal.
    pub fn retain_and_save(&mut self, texts: &[String]) {
        let keep: std::collections::HashSet<Key> = texts.iter().map(|t| self.key(t)).collect();
        let before = self.vectors.len();
        self.vectors.retain(|k, _| keep.contains(k));
        self.dirty |= self.vectors.len() != before;
        let Some(path) = self.path.clone() else {
            return;
        };
        if !self.dirty {
            return;
        }
        match self.write(&path) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::warn!(cache = %path.display(), error = %e, "cannot write the passage embedding cache")
            }
        }
    }

    fn read(&mut self, path: &Path) -> std::io::Result<usize> {
        let bytes = std::fs::read(path)?;
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let mut r = bytes.as_slice();
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad("not an embedding cache"));
        }
        let mut word = [0u8; 4];
        r.read_exact(&mut word)?;
        let fp_len = u32::from_le_bytes(word) as usize;
        let mut fp = vec![0u8; fp_len];
        r.read_exact(&mut fp)?;
        r.read_exact(&mut word)?;
        let dim = u32::from_le_bytes(word) as usize;
        if fp != self.fingerprint.as_bytes() || dim != self.dim {
            return Err(bad("made with another encoder"));
        }
        let row = 16 + 4 * dim;
        if r.len() % row != 0 {
            return Err(bad("truncated"));
        }
        for chunk in r.chunks_exact(row) {
            let key: Key = chunk[..16].try_into().expect("16 bytes");
            let vector = chunk[16..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            self.vectors.insert(key, vector);
        }
        Ok(self.vectors.len())
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("part");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(MAGIC)?;
        out.write_all(&(self.fingerprint.len() as u32).to_le_bytes())?;
        out.write_all(self.fingerprint.as_bytes())?;
        out.write_all(&(self.dim as u32).to_le_bytes())?;
        for (key, vector) in &self.vectors {
            out.write_all(key)?;
            for x in vector {
                out.write_all(&x.to_le_bytes())?;
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarities_are_dot_products_in_passage_order() {
        let index = DenseIndex::new(2, &[vec![1.0, 0.0], vec![0.6, 0.8]]);
        let s = index.similarities(&[0.6, 0.8]);
        assert!((s[0] - 0.6).abs() < 1e-6 && (s[1] - 1.0).abs() < 1e-6);
        assert!(index.similarities(&[1.0]).is_empty(), "wrong dimension");
    }

    #[test]
    fn the_cache_survives_a_restart_and_ignores_another_encoder() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("passages.emb");
        let mut cache = EmbeddingCache::open_for(&path, "enc-a", 2);
        let texts = ["first passage".to_string(), "second".to_string()];
        for (t, v) in texts.iter().zip([[0.6, 0.8], [1.0, 0.0]]) {
            let key = cache.key(t);
            cache.vectors.insert(key, v.to_vec());
        }
        cache.dirty = true;
        cache.retain_and_save(&texts[..1]);
        let reopened = EmbeddingCache::open_for(&path, "enc-a", 2);
        assert_eq!(reopened.vectors.len(), 1, "only kept passages are saved");
        assert_eq!(
            reopened.vectors[&reopened.key("first passage")],
            vec![0.6, 0.8]
        );
        assert!(
            EmbeddingCache::open_for(&path, "enc-b", 2)
                .vectors
                .is_empty()
        );
        std::fs::write(&path, b"garbage").unwrap();
        assert!(
            EmbeddingCache::open_for(&path, "enc-a", 2)
                .vectors
                .is_empty()
        );
    }
}
