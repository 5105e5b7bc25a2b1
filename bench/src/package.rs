//! What a deploy uploads: the bootstrap binary and the zip SAM makes of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub struct Package {
    pub bootstrap: PathBuf,
    pub binary_bytes: u64,
    pub zip_bytes: u64,
    /// From the ELF header: `x86_64`, `arm64`, ...
    pub arch: String,
}

pub fn bootstrap_path(target_dir: &Path, binary: &str) -> PathBuf {
    target_dir.join("lambda").join(binary).join("bootstrap")
}

/// Measures `target/lambda/<binary>/bootstrap` and zips it into `out_dir`.
pub fn measure(target_dir: &Path, binary: &str, out_dir: &Path) -> Result<Package> {
    let bootstrap = bootstrap_path(target_dir, binary);
    if !bootstrap.is_file() {
        bail!(
            "{} does not exist: build the functions first (`cargo lambda build --release`, which bench/run.sh does)",
            bootstrap.display()
        );
    }
    let bytes =
        std::fs::read(&bootstrap).with_context(|| format!("reading {}", bootstrap.display()))?;
    let zip_path = out_dir.join(format!("{binary}.zip"));
    write_zip(&zip_path, &bytes)?;
    let zip_bytes = std::fs::metadata(&zip_path)?.len();
    Ok(Package {
        bootstrap,
        binary_bytes: bytes.len() as u64,
        zip_bytes,
        arch: elf_arch(&bytes),
    })
}

/// One entry, `bootstrap`, executable, deflated by zlib at its default level: what SAM
/// (Python's `zipfile` with `ZIP_DEFLATED`) uploads for a `provided.al2023` function.
fn write_zip(path: &Path, bootstrap: &[u8]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(bootstrap)?;
    zip.finish()?;
    Ok(())
}

fn elf_arch(bytes: &[u8]) -> String {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return "not ELF".into();
    }
    match u16::from_le_bytes([bytes[18], bytes[19]]) {
        0x3e => "x86_64".into(),
        0xb7 => "arm64".into(),
        other => format!("ELF machine {other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_one_executable_entry() {
        let dir = std::env::temp_dir().join(format!("uslugi-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.zip");
        let payload = vec![7u8; 100_000];
        write_zip(&path, &payload).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 10_000, "{size}");
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
        assert_eq!(entry.size(), 100_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_the_architecture() {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[18] = 0xb7;
        assert_eq!(elf_arch(&header), "arm64");
        assert_eq!(elf_arch(b"#!/bin/sh"), "not ELF");
    }
}
