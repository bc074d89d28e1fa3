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
const LINK_SECRET_FILE: &str = "link-secret";
const AUDIT_KEY_FILE: &str = "audit-key";

/// The HS256 key: `CLEARANCE_JWT_SECRET`, else the one kept in the data
/// directory (created there on first use, readable by its owner only).
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    match &settings.jwt_secret {
        Some(secret) => Ok(secret.clone()),
        None => load_or_generate(&settings.data_dir.join(JWT_SECRET_FILE)),
    }
}

/// The key of the tokens in mailed links: `CLEARANCE_LINK_SECRET`, else
/// its own file in the data directory, never the JWT secret.
pub fn link_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    match &settings.link_secret {
        Some(secret) => Ok(secret.clone()),
        None => load_or_generate(&settings.data_dir.join(LINK_SECRET_FILE)),
    }
}

/// The key of the audit chain's hashes and head: `CLEARANCE_AUDIT_KEY`,
/// else its own file in the data directory. It must live outside the
/// database: whoever holds it can rewrite the chain undetected.
pub fn audit_key(settings: &Settings) -> anyhow::Result<SecretString> {
    match &settings.audit_key {
        Some(secret) => Ok(secret.clone()),
        None => load_or_generate(&settings.data_dir.join(AUDIT_KEY_FILE)),
    }
}

/// The JWT secret the server uses, without ever making one up: for
/// `clearance token`, whose tokens a new secret would make worthless.
pub fn kept_jwt_secret(settings: &Settings) -> Result<SecretString, String> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join(JWT_SECRET_FILE);
    if !path.exists() {
        return Err(format!(
            "no JWT secret: CLEARANCE_JWT_SECRET is unset and {} does not exist; run this where the server keeps its data (CLEARANCE_DATA_DIR, else the SQLite file's folder) or set CLEARANCE_JWT_SECRET to the server's",
            path.display()
        ));
    }
    load_or_generate(&path).map_err(|e| format!("{e:#}"))
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

    #[test]
    fn the_link_secret_is_its_own_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::for_database(
            crate::config::DatabaseUrl::Sqlite(dir.path().join("c.db")),
            dir.path(),
        );
        let link = link_secret(&settings).unwrap();
        let jwt = jwt_secret(&settings).unwrap();
        assert_ne!(link.expose_secret(), jwt.expose_secret());
        assert_eq!(
            link_secret(&settings).unwrap().expose_secret(),
            link.expose_secret()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(LINK_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
