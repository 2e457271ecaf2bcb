//! [`MemoryAuditStore`] and [`FileAuditStore`].

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;

use crate::{AuditStore, Entry, Error, Event};

/// Entries in memory.
#[derive(Debug, Default)]
pub struct MemoryAuditStore {
    entries: Mutex<Vec<Entry>>,
}

impl MemoryAuditStore {
    /// An empty trail.
    pub fn new() -> MemoryAuditStore {
        MemoryAuditStore::default()
    }
}

#[async_trait::async_trait]
impl AuditStore for MemoryAuditStore {
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = Entry::next(entries.last(), at, event);
        entries.push(entry.clone());
        Ok(entry)
    }

    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }
}

/// Entries as JSON Lines in a file; a missing file is an empty trail.
#[derive(Debug)]
pub struct FileAuditStore {
    path: PathBuf,
    /// Serialises appends from this process; appends from several processes are not supported
    /// (the release lock keeps one pipeline per release).
    write: Mutex<()>,
}

impl FileAuditStore {
    /// A trail at `path` (created on first append, with its parent directories).
    pub fn new(path: impl Into<PathBuf>) -> FileAuditStore {
        FileAuditStore {
            path: path.into(),
            write: Mutex::new(()),
        }
    }

    /// Where the trail lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, operation: &'static str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: self.path.display().to_string(),
            operation,
            source,
        }
    }

    fn read(&self) -> Result<Vec<Entry>, Error> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.io("open")(err)),
        };
        let mut entries = Vec::new();
        for (idx, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(self.io("read"))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|err| Error::Corrupt {
                path: self.path.display().to_string(),
                line: idx + 1,
                message: err.to_string(),
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

#[async_trait::async_trait]
impl AuditStore for FileAuditStore {
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error> {
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = self.read()?;
        let entry = Entry::next(entries.last(), at, event);
        if let Some(parent) = self
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(self.io("create directory"))?;
        }
        let mut line = serde_json::to_vec(&entry)
            .map_err(|err| self.io("encode")(std::io::Error::other(err)))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(self.io("open"))?;
        file.write_all(&line).map_err(self.io("append"))?;
        file.sync_data().map_err(self.io("sync"))?;
        Ok(entry)
    }

    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use slipway_core::ReleaseId;

    use super::*;
    use crate::verify;

    #[tokio::test]
    async fn file_store_survives_reopen_and_detects_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit/trail.jsonl");
        let event = |detail: &str| Event::Decision {
            release: ReleaseId::parse("ml/iris").expect("id"),
            stage: "analysis".into(),
            verdict: "pass".into(),
            detail: detail.into(),
        };
        let at = Timestamp::from_second(1_700_000_000).expect("ts");
        FileAuditStore::new(&path)
            .append(at, event("one"))
            .await
            .expect("append");
        let reopened = FileAuditStore::new(&path);
        let second = reopened.append(at, event("two")).await.expect("append");
        assert_eq!(second.seq, 2);
        let entries = reopened.entries().await.expect("read");
        assert!(verify(&entries, None).is_empty());

        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("\"one\"", "\"uno\"");
        std::fs::write(&path, text).expect("write");
        let problems = verify(&reopened.entries().await.expect("read"), None);
        assert_eq!(problems.len(), 1, "{problems:?}");

        std::fs::write(&path, "{not json}\n").expect("write");
        let err = reopened.entries().await.expect_err("corrupt");
        assert!(
            err.to_string().contains("line 1: not a valid entry"),
            "{err}"
        );
    }
}
