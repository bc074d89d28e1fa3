//! Secrets a deployment may leave unset: generated on first start and kept
//! in the data directory, so a development setup works with no preparation
//! and keeps working across restarts.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;

const JWT_SECRET_FILE: &str = "jwt-secret";

/// The HS256 key: `CLEARANCE_JWT_SECRET`, else the one kept in the data
/// directory (created there on first use, readable by its owner only).
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    match &settings.jwt_secret {
        Some(secret) => Ok(secret.clone()),
        None => load_or_generate(&settings.data_dir.join(JWT_SECRET_FILE)),
    }
}

fn load_or_generate(path: &Path) -> anyhow::Result<SecretString> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        anyhow::ensure!(
            existing.len() >= 32,
            "{} holds a secret shorter than 32 characters",
            path.display()
        );
        return Ok(SecretString::from(existing.to_owned()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(SecretString::from(secret))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_generate(path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The bytes of a secret, for key construction.
pub fn bytes(secret: &SecretString) -> &[u8] {
    secret.expose_secret().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(JWT_SECRET_FILE);
        let first = load_or_generate(&path).unwrap();
        let second = load_or_generate(&path).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(first.expose_secret().len() >= 32);
    }
}
