//! Rewriting a GGUF's weights for the CPU kernels candle has.
//!
//! candle 0.10 (inside mistral.rs 0.8.1) multiplies Q4_0, Q8_0 and the
//! K-quants with vectorised code, but Q4_1, Q5_0 and Q5_1 with scalar loops:
//! the default SmolLM2 Q4_1 file processes a prompt at about half the speed
//! of the same weights as Q8_0. So, once per model file, those tensors are
//! dequantized and stored again as Q8_0 (8 bits hold every 4- or 5-bit
//! value's block closely; the file grows from ~90 to ~145 MB) in a copy in
//! the data folder, and the server loads the copy.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("cannot rewrite {path} for the fast CPU kernels: {message}")]
pub struct RequantizeError {
    path: PathBuf,
    message: String,
}

/// Quantizations candle runs with scalar code on the CPU.
fn is_slow_on_cpu(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// llama.cpp's `general.file_type` for "mostly Q8_0".
const FILE_TYPE_Q8_0: u32 = 7;

/// The model to load on the CPU: `source` itself when all its weights have
/// fast kernels, otherwise a Q8_0 copy in `cache_dir`, written on first use
/// and named after the source's sha256.
/// CPU-bound and slow the first time (a few seconds): call it off the
/// async executor.
pub fn for_cpu(source: &Path, cache_dir: &Path) -> Result<PathBuf, RequantizeError> {
    let err = |message: String| RequantizeError {
        path: source.to_path_buf(),
        message,
    };
    let mut reader = BufReader::new(File::open(source).map_err(|e| err(e.to_string()))?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| err(e.to_string()))?;
    if !content
        .tensor_infos
        .values()
        .any(|t| is_slow_on_cpu(t.ggml_dtype))
    {
        return Ok(source.to_path_buf());
    }
    let target = cache_dir.join(cached_name(source).map_err(|e| err(e.to_string()))?);
    if target.exists() {
        return Ok(target);
    }
    let started = std::time::Instant::now();
    // Tensors in file order, so the same source always gives the same bytes.
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|n| content.tensor_infos[*n].offset);
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    let mut converted: std::collections::BTreeMap<String, usize> = Default::default();
    for name in names {
        let tensor = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| err(format!("{name}: {e}")))?;
        let tensor = if is_slow_on_cpu(tensor.dtype()) {
            *converted
                .entry(format!("{:?}", tensor.dtype()))
                .or_default() += 1;
            let weights = tensor
                .dequantize(&Device::Cpu)
                .map_err(|e| err(format!("{name}: {e}")))?;
            QTensor::quantize(&weights, GgmlDType::Q8_0).map_err(|e| err(format!("{name}: {e}")))?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let mut metadata: Vec<(&str, Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "general.file_type" | "general.alignment"))
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    metadata.push(("general.file_type", Value::U32(FILE_TYPE_Q8_0)));
    // candle's writer aligns tensor data to 32 bytes.
    metadata.push(("general.alignment", Value::U32(32)));
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (*k, t)).collect();
    std::fs::create_dir_all(cache_dir).map_err(|e| err(e.to_string()))?;
    // Written beside the target and renamed, so a crash leaves no half file.
    let partial = target.with_extension("gguf.partial");
    let mut out = BufWriter::new(File::create(&partial).map_err(|e| err(e.to_string()))?);
    gguf_file::write(&mut out, &metadata, &tensors).map_err(|e| err(e.to_string()))?;
    out.into_inner()
        .map_err(|e| err(e.to_string()))?
        .sync_all()
        .map_err(|e| err(e.to_string()))?;
    std::fs::rename(&partial, &target).map_err(|e| err(e.to_string()))?;
    remove_older_copies(&target);
    tracing::info!(
        source = %source.display(),
        target = %target.display(),
        ms = started.elapsed().as_millis() as u64,
        converted = ?converted,
        "model weights rewritten as Q8_0: candle multiplies these with scalar code on the CPU, Q8_0 with vectorised code"
    );
    Ok(target)
}

/// Copies of an earlier version of the same model file: 145 MB each.
fn remove_older_copies(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let Some((prefix, _)) = name.rsplit_once("-") else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let other = entry.file_name().to_string_lossy().to_string();
        if other != name && other.starts_with(&format!("{prefix}-")) && other.ends_with(".gguf") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `NAME.q8_0-SHA.gguf`, after the sha256 of the source's bytes (a quarter
/// of a second for 100 MB): a changed model file gets a new copy, and the
/// same file under another path shares it.
fn cached_name(source: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut file = File::open(source)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let hash = hasher.finalize();
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    Ok(format!("{stem}.q8_0-{}.gguf", &hex::encode(hash)[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    fn write_gguf(path: &Path, dtype: GgmlDType) {
        let weights = Tensor::arange(0f32, 256.0, &Device::Cpu)
            .unwrap()
            .affine(0.01, -1.0)
            .unwrap()
            .reshape((4, 64))
            .unwrap();
        let q = QTensor::quantize(&weights, dtype).unwrap();
        let name = Value::String("tiny".into());
        let mut f = File::create(path).unwrap();
        gguf_file::write(&mut f, &[("general.name", &name)], &[("w", &q)]).unwrap();
    }

    #[test]
    fn slow_quantizations_become_q8_0_once_and_keep_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("m.gguf");
        write_gguf(&source, GgmlDType::Q4_1);
        let cache = dir.path().join("cache");
        let target = for_cpu(&source, &cache).unwrap();
        assert_ne!(target, source);
        let mut r = BufReader::new(File::open(&target).unwrap());
        let content = gguf_file::Content::read(&mut r).unwrap();
        assert_eq!(content.tensor_infos["w"].ggml_dtype, GgmlDType::Q8_0);
        assert!(matches!(
            content.metadata["general.name"],
            Value::String(ref s) if s == "tiny"
        ));
        let before = {
            let mut r = BufReader::new(File::open(&source).unwrap());
            let c = gguf_file::Content::read(&mut r).unwrap();
            c.tensor(&mut r, "w", &Device::Cpu)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap()
        };
        let after = content
            .tensor(&mut r, "w", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        let diff = super::super::largest_abs(&(before - after).unwrap());
        assert!(diff < 0.01, "largest change {diff}");
        // The second call finds the copy.
        let written = std::fs::metadata(&target).unwrap().modified().unwrap();
        assert_eq!(for_cpu(&source, &cache).unwrap(), target);
        assert_eq!(
            std::fs::metadata(&target).unwrap().modified().unwrap(),
            written
        );
    }

    #[test]
    fn a_model_with_fast_kernels_is_loaded_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("m.gguf");
        write_gguf(&source, GgmlDType::Q8_0);
        assert_eq!(for_cpu(&source, dir.path()).unwrap(), source);
    }
}
