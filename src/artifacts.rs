//! Where the bytes of evidence artifacts live. Rows name artifacts by their
//! SHA-256; the bytes sit in a content-addressed store, so a file filed
//! twice is kept once, and the store sits behind [`ArtifactStore`] so that
//! an object store can replace the disk without touching the handlers.

use std::io;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{self, LocalBoxStream};
use futures_util::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::domain::evidence::Sha256Digest;

/// Content arriving in chunks, e.g. a request body.
pub type ByteStream<'a> = LocalBoxStream<'a, io::Result<Bytes>>;

/// What a completed `put` stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// Stored bytes being read back.
pub struct Blob {
    pub size: u64,
    pub content: ByteStream<'static>,
}

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the content is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The content's own stream failed (the client went away, say).
    #[error("could not read the content: {0}")]
    Read(io::Error),
    #[error("could not store the content: {0}")]
    Storage(io::Error),
}

/// A content-addressed store of artifact bytes.
pub trait ArtifactStore: Send + Sync {
    /// Reads `content` to its end and stores it under its SHA-256. Content
    /// that runs past `limit` bytes is refused as soon as it does, and
    /// nothing of it is kept; so is content whose stream fails.
    fn put<'a>(
        &'a self,
        content: ByteStream<'a>,
        limit: u64,
    ) -> LocalBoxFuture<'a, Result<Stored, PutError>>;

    /// The bytes stored under `sha256`; `None` when there are none.
    fn open<'a>(&'a self, sha256: &'a Sha256Digest)
    -> LocalBoxFuture<'a, io::Result<Option<Blob>>>;
}

/// How much of a stored file is read per chunk sent.
const READ_CHUNK: usize = 64 * 1024;

/// Artifacts as files under one folder: `ab/abcdef…` by SHA-256, written
/// first to `tmp/` and renamed into place once complete and synced, so a
/// crash never leaves a partial file under a digest.
pub struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path_of(&self, sha256: &Sha256Digest) -> PathBuf {
        let hex = sha256.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    async fn put_inner(&self, mut content: ByteStream<'_>, limit: u64) -> Result<Stored, PutError> {
        let tmp = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(PutError::Storage)?;
        let temp = TempPath(tmp.join(format!("{}.part", uuid::Uuid::new_v4())));
        let mut file = tokio::fs::File::create(&temp.0)
            .await
            .map_err(PutError::Storage)?;
        let mut hasher = Sha256::new();
        let mut size = 0_u64;
        while let Some(chunk) = content.next().await {
            let chunk = chunk.map_err(PutError::Read)?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(PutError::TooLarge(limit));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(PutError::Storage)?;
        }
        file.flush().await.map_err(PutError::Storage)?;
        file.sync_all().await.map_err(PutError::Storage)?;
        drop(file);
        let sha256 = Sha256Digest::from_bytes(hasher.finalize().into());
        let path = self.path_of(&sha256);
        // Already stored: the temp file goes, the stored copy stays.
        if !tokio::fs::try_exists(&path)
            .await
            .map_err(PutError::Storage)?
        {
            let dir = path.parent().unwrap_or(&self.root);
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(PutError::Storage)?;
            tokio::fs::rename(&temp.0, &path)
                .await
                .map_err(PutError::Storage)?;
            temp.disarm();
            sync_dir(dir).await.map_err(PutError::Storage)?;
        }
        Ok(Stored { sha256, size })
    }

    async fn open_inner(&self, sha256: &Sha256Digest) -> io::Result<Option<Blob>> {
        let file = match tokio::fs::File::open(self.path_of(sha256)).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata().await?.len();
        let content = stream::try_unfold(file, |mut file| async move {
            let mut chunk = BytesMut::with_capacity(READ_CHUNK);
            let read = file.read_buf(&mut chunk).await?;
            Ok((read > 0).then(|| (chunk.freeze(), file)))
        });
        Ok(Some(Blob {
            size,
            content: content.boxed_local(),
        }))
    }
}

impl ArtifactStore for DiskStore {
    fn put<'a>(
        &'a self,
        content: ByteStream<'a>,
        limit: u64,
    ) -> LocalBoxFuture<'a, Result<Stored, PutError>> {
        self.put_inner(content, limit).boxed_local()
    }

    fn open<'a>(
        &'a self,
        sha256: &'a Sha256Digest,
    ) -> LocalBoxFuture<'a, io::Result<Option<Blob>>> {
        self.open_inner(sha256).boxed_local()
    }
}

/// A rename is durable only once the folder holding the new name is synced.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// A temp file removed when dropped (on any early return, and if the upload
/// is abandoned) unless it was moved into place.
struct TempPath(PathBuf);

impl TempPath {
    fn disarm(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            // One unlink: quick enough not to need a blocking thread.
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream<'static> {
        let parts: Vec<io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        stream::iter(parts).boxed_local()
    }

    /// Every file under `dir`, at any depth.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .flat_map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    files(&path)
                } else {
                    vec![path]
                }
            })
            .collect()
    }

    async fn read_all(blob: Blob) -> Vec<u8> {
        let parts: Vec<Bytes> = blob.content.map(|c| c.unwrap()).collect().await;
        parts.concat()
    }

    #[tokio::test]
    async fn content_is_stored_once_under_its_digest_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path().join("artifacts"));
        let stored = store.put(chunks(&[b"\x00\xffab", b"c"]), 5).await.unwrap();
        let expected: [u8; 32] = Sha256::digest(b"\x00\xffabc").into();
        assert_eq!(stored.sha256, Sha256Digest::from_bytes(expected));
        assert_eq!(stored.size, 5);
        let again = store.put(chunks(&[b"\x00\xff", b"abc"]), 5).await.unwrap();
        assert_eq!(again, stored);
        let hex = stored.sha256.to_hex();
        assert_eq!(
            files(&dir.path().join("artifacts")),
            [dir.path().join("artifacts").join(&hex[..2]).join(&hex)]
        );
        let blob = store.open(&stored.sha256).await.unwrap().unwrap();
        assert_eq!(blob.size, 5);
        assert_eq!(read_all(blob).await, b"\x00\xffabc");
        let absent = Sha256Digest::from_bytes([7; 32]);
        assert!(store.open(&absent).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn content_over_the_limit_or_cut_off_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path().join("artifacts"));
        let error = store.put(chunks(&[b"abc", b"def"]), 5).await.unwrap_err();
        assert!(matches!(error, PutError::TooLarge(5)), "{error:?}");
        let failing: ByteStream<'static> = stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::other("connection reset")),
        ])
        .boxed_local();
        let error = store.put(failing, 100).await.unwrap_err();
        assert!(matches!(error, PutError::Read(_)), "{error:?}");
        assert_eq!(files(&dir.path().join("artifacts")), Vec::<PathBuf>::new());
    }
}
