//! The embedded default transport: each message becomes an `.eml` file in
//! `CLEARANCE_MAIL_DIR`, so a demo without a relay still shows what it
//! "sent". The file is named after the caller's stable message id, so the
//! resend of a message (after a worker restart) overwrites its file instead
//! of adding a second one, and it appears whole or not at all (written to a
//! temporary file, synced, then renamed).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::mail::transport::Outcome;

/// File names longer than this are replaced by a digest: names stay well
/// under the 255 bytes most file systems allow.
const MAX_NAME: usize = 200;

#[derive(Debug)]
pub struct FileSender {
    dir: PathBuf,
}

impl FileSender {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Writes `message` to `<dir>/<id>.eml`, creating the folder if needed.
    pub async fn send(&mut self, id: &str, message: &[u8]) -> Outcome {
        let path = self.dir.join(format!("{}.eml", file_stem(id)));
        match write_atomically(&self.dir, &path, message).await {
            Ok(()) => Outcome::Sent {
                reply: format!("written to {}", path.display()),
            },
            Err(e) => Outcome::Transient {
                error: format!("writing {}: {e}", path.display()),
                reply: None,
                throttled: false,
            },
        }
    }
}

/// Whether mail can be written into `dir` (created when missing): checked
/// at start, so that a folder the service cannot write is one clear line
/// rather than mails left retrying.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "CLEARANCE_MAIL_DIR {} is not a folder this user can write ({e}): make it one, or set CLEARANCE_SMTP_URL to send through a relay",
                dir.display()
            )
        })
}

async fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    // A name of its own per write: two tasks writing the same message never
    // share a temporary file. The leading dot keeps it out of `*.eml`.
    let temp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = async {
        let mut file = tokio::fs::File::create(&temp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temp, path).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    written
}

/// A file name for `id` that is safe (no separators, no leading dot, no
/// control characters) and distinct for distinct ids: bytes other than
/// ASCII letters, digits, `-`, `.`, `@` and `+` are written as `_XX` in
/// hex, `_` included. An empty or very long result becomes the SHA-256.
fn file_stem(id: &str) -> String {
    let mut stem = String::with_capacity(id.len());
    for (i, byte) in id.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'@' | b'+')
            || (byte == b'.' && i > 0);
        if plain {
            stem.push(char::from(byte));
        } else {
            stem.push_str(&format!("_{byte:02X}"));
        }
    }
    if stem.is_empty() || stem.len() > MAX_NAME {
        hex::encode(Sha256::digest(id.as_bytes()))
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_safe_and_keep_ids_apart() {
        assert_eq!(file_stem("row-42"), "row-42");
        assert_eq!(
            file_stem("<0191.a@clearance.example>"),
            "_3C0191.a@clearance.example_3E"
        );
        assert_eq!(file_stem("../etc/passwd"), "_2E._2Fetc_2Fpasswd");
        assert_ne!(file_stem("a/b"), file_stem("a_b"));
        assert_eq!(file_stem("a_b"), "a_5Fb");
        assert_eq!(file_stem("line\r\nbreak"), "line_0D_0Abreak");
        assert_eq!(file_stem("").len(), 64);
        let long = "x".repeat(500);
        assert_eq!(file_stem(&long).len(), 64);
    }
}
