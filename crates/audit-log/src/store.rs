//! [`MemoryAuditStore`] and [`FileAuditStore`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use slipway_attest::Signer;

use crate::{AuditStore, Damage, DamageKind, Entry, Error, Event, Trail};

/// Entries in memory.
#[derive(Default)]
pub struct MemoryAuditStore {
    entries: Mutex<Vec<Entry>>,
    signer: Option<Arc<dyn Signer>>,
}

impl std::fmt::Debug for MemoryAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAuditStore")
            .field(
                "signer",
                &self.signer.as_ref().map(|signer| signer.key_id()),
            )
            .finish_non_exhaustive()
    }
}

impl MemoryAuditStore {
    /// An empty trail.
    pub fn new() -> MemoryAuditStore {
        MemoryAuditStore::default()
    }

    /// Signs every entry appended from now on with `signer`.
    #[must_use]
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> MemoryAuditStore {
        self.signer = Some(signer);
        self
    }
}

#[async_trait::async_trait]
impl AuditStore for MemoryAuditStore {
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = Entry::next_signed(entries.last(), at, event, self.signer.as_deref())?;
        entries.push(entry.clone());
        Ok(entry)
    }

    async fn read(&self) -> Result<Trail, Error> {
        Ok(Trail {
            entries: self
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            damage: Vec::new(),
        })
    }
}

/// Entries as JSON Lines in a file; a missing file is an empty trail.
///
/// Each append is one `write` of the entry's JSON *and* its newline on a file opened with
/// `O_APPEND`, then `fsync`; a short write is rolled back by truncating to the length before it.
/// A reader therefore takes a last line without its newline (or one that does not parse) for a
/// write that did not finish, not for an entry.
pub struct FileAuditStore {
    path: PathBuf,
    signer: Option<Arc<dyn Signer>>,
    /// Serialises appends from this process; appends from several processes are not supported
    /// (the release lock keeps one pipeline per release).
    write: Mutex<()>,
}

impl std::fmt::Debug for FileAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAuditStore")
            .field("path", &self.path)
            .field(
                "signer",
                &self.signer.as_ref().map(|signer| signer.key_id()),
            )
            .finish_non_exhaustive()
    }
}

/// Shell-quotes a path for a command in a hint.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

impl FileAuditStore {
    /// A trail at `path` (created on first append, with its parent directories).
    pub fn new(path: impl Into<PathBuf>) -> FileAuditStore {
        FileAuditStore {
            path: path.into(),
            signer: None,
            write: Mutex::new(()),
        }
    }

    /// Signs every entry appended from now on with `signer`.
    #[must_use]
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> FileAuditStore {
        self.signer = Some(signer);
        self
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

    /// Reads the file: complete lines are entries, anything else is damage.
    fn read_file(&self) -> Result<Trail, Error> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Trail::default()),
            Err(err) => return Err(self.io("read")(err)),
        };
        Ok(parse_lines(&self.path, &bytes))
    }
}

/// Splits a trail file into entries and damage. Only the last line can be a torn write: the
/// newline is the last byte of every write, so an earlier line that does not parse was changed
/// afterwards.
fn parse_lines(path: &Path, bytes: &[u8]) -> Trail {
    let mut trail = Trail::default();
    let mut start = 0;
    let mut line_number = 0;
    while start < bytes.len() {
        line_number += 1;
        let (line, end, terminated) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => (&bytes[start..start + offset], start + offset + 1, true),
            None => (&bytes[start..], bytes.len(), false),
        };
        let is_last = end >= bytes.len();
        let location = format!("`{}` line {line_number}", path.display());
        if line.iter().all(u8::is_ascii_whitespace) && terminated {
            start = end;
            continue;
        }
        let parsed = serde_json::from_slice::<Entry>(line);
        let torn = |detail: String| Damage {
            kind: DamageKind::TruncatedWrite,
            location: location.clone(),
            detail,
            repair: format!(
                "the last write was cut short (a crash or a full disk) and never acknowledged, so it is not an entry; remove it with `truncate -s {start} {}` (keeps the {start} bytes of complete entries), then run `slipway-audit verify`",
                quoted(path)
            ),
        };
        match (parsed, terminated, is_last) {
            (Ok(entry), true, _) => trail.entries.push(entry),
            (Ok(_), false, _) => trail.damage.push(torn(
                "truncated last write: the entry has no terminating newline, so its write did not finish".to_owned(),
            )),
            (Err(err), _, true) => trail.damage.push(torn(format!(
                "truncated last write: the last line is not a complete entry ({err})"
            ))),
            (Err(err), _, false) => trail.damage.push(Damage {
                kind: DamageKind::Unreadable,
                location,
                detail: format!("not a valid entry ({err})"),
                repair: "the file was edited by hand or is corrupt; `slipway-audit verify` shows where the chain breaks; restore the trail from a backup".to_owned(),
            }),
        }
        start = end;
    }
    trail
}

#[async_trait::async_trait]
impl AuditStore for FileAuditStore {
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error> {
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let trail = self.read_file()?;
        if let Some(damage) = trail.damage.into_iter().next() {
            let mut err = damage.into_error();
            if let Error::Damaged { detail, .. } = &mut err {
                *detail = format!("refusing to append: {detail}");
            }
            return Err(err);
        }
        let entry = Entry::next_signed(trail.entries.last(), at, event, self.signer.as_deref())?;
        let parent = self
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty());
        if let Some(parent) = parent {
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
        let before = file.metadata().map_err(self.io("stat"))?.len();
        // One write of line and newline: never a complete-looking line without its newline.
        let written = file.write(&line);
        if written.as_ref().ok() != Some(&line.len()) {
            // Roll a partial write back so the trail ends on a complete entry again.
            let rollback = file.set_len(before);
            let source = match (written, rollback) {
                (Err(err), _) | (Ok(_), Err(err)) => err,
                (Ok(count), Ok(())) => std::io::Error::other(format!(
                    "short write: {count} of {} bytes; rolled back",
                    line.len()
                )),
            };
            return Err(self.io("append")(source));
        }
        file.sync_data().map_err(self.io("sync"))?;
        if before == 0 {
            // A new file's directory entry must reach the disk too.
            if let Some(dir) = parent {
                std::fs::File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(self.io("sync directory"))?;
            }
        }
        Ok(entry)
    }

    async fn read(&self) -> Result<Trail, Error> {
        self.read_file()
    }
}

#[cfg(test)]
mod tests {
    use slipway_core::ReleaseId;

    use super::*;
    use crate::{verify, verify_signatures};

    fn event(detail: &str) -> Event {
        Event::Decision {
            release: ReleaseId::parse("ml/iris").expect("id"),
            stage: "analysis".into(),
            verdict: "pass".into(),
            detail: detail.into(),
        }
    }

    fn at() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("ts")
    }

    #[tokio::test]
    async fn file_store_survives_reopen_and_detects_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit/trail.jsonl");
        FileAuditStore::new(&path)
            .append(at(), event("one"))
            .await
            .expect("append");
        let reopened = FileAuditStore::new(&path);
        let second = reopened.append(at(), event("two")).await.expect("append");
        assert_eq!(second.seq, 2);
        let entries = reopened.entries().await.expect("read");
        assert!(verify(&entries, None).is_empty());
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.ends_with("}\n") && !text.contains("signature"),
            "{text}"
        );

        let edited = text.replace("\"one\"", "\"uno\"");
        std::fs::write(&path, edited).expect("write");
        let problems = verify(&reopened.entries().await.expect("read"), None);
        assert_eq!(problems.len(), 1, "{problems:?}");

        std::fs::write(
            &path,
            format!("{{not json}}\n{}", text.lines().nth(1).expect("line 2")) + "\n",
        )
        .expect("write");
        let err = reopened.entries().await.expect_err("corrupt");
        assert!(
            err.to_string().contains("line 1: not a valid entry"),
            "{err}"
        );
    }

    /// A two-entry trail whose last line is cut to `keep(length of that line)` bytes; returns the
    /// length of the first line, which is where a repair truncates to.
    async fn torn_trail(keep: fn(usize) -> usize) -> (tempfile::TempDir, PathBuf, usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trail.jsonl");
        let store = FileAuditStore::new(&path);
        store.append(at(), event("one")).await.expect("append");
        let first_len = std::fs::metadata(&path).expect("stat").len() as usize;
        store.append(at(), event("two")).await.expect("append");
        let bytes = std::fs::read(&path).expect("read");
        let cut = first_len + keep(bytes.len() - first_len);
        std::fs::write(&path, &bytes[..cut]).expect("truncate");
        (dir, path, first_len)
    }

    #[tokio::test]
    async fn a_truncated_last_write_is_damage_never_an_entry() {
        // Cut in the middle of the JSON, and just before the newline (the JSON is complete).
        let cuts: [fn(usize) -> usize; 2] = [|len| len / 2, |len| len - 1];
        for keep in cuts {
            let (_dir, path, first_len) = torn_trail(keep).await;
            let store = FileAuditStore::new(&path);
            let trail = store.read().await.expect("read");
            assert_eq!(trail.entries.len(), 1, "only the complete entry");
            assert_eq!(trail.damage.len(), 1);
            let damage = &trail.damage[0];
            assert_eq!(damage.kind, DamageKind::TruncatedWrite);
            assert!(damage.location.ends_with("line 2"), "{damage:?}");
            assert!(
                damage.detail.starts_with("truncated last write"),
                "{damage:?}"
            );
            assert!(
                damage.repair.contains(&format!("truncate -s {first_len} ")),
                "{damage:?}"
            );

            let err = store
                .append(at(), event("three"))
                .await
                .expect_err("no chaining onto a torn tail");
            let text = err.to_string();
            assert!(
                text.contains("refusing to append: truncated last write"),
                "{text}"
            );
            assert!(
                text.contains("hint: the last write was cut short"),
                "{text}"
            );
            assert!(store.entries().await.is_err(), "entries() refuses damage");

            // The repair the hint names restores an appendable, intact trail.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open");
            file.set_len(first_len as u64).expect("truncate");
            let third = store.append(at(), event("three")).await.expect("append");
            assert_eq!(third.seq, 2);
            let entries = store.entries().await.expect("read");
            assert!(verify(&entries, None).is_empty());
        }
    }

    #[tokio::test]
    async fn signed_stores_sign_every_entry() {
        let key = Arc::new(slipway_attest::EcdsaP256Key::generate());
        let public = key.public();
        let dir = tempfile::tempdir().expect("tempdir");
        let file = FileAuditStore::new(dir.path().join("trail.jsonl")).with_signer(key.clone());
        let memory = MemoryAuditStore::new().with_signer(key.clone());
        for store in [&file as &dyn AuditStore, &memory] {
            store.append(at(), event("one")).await.expect("append");
            store.append(at(), event("two")).await.expect("append");
            let entries = store.entries().await.expect("read");
            assert_eq!(entries.len(), 2);
            assert!(verify(&entries, None).is_empty());
            assert!(verify_signatures(&entries, &[&public]).is_empty());
            assert_eq!(
                entries[1].signature.as_ref().map(|s| s.key_id.clone()),
                Some(slipway_attest::Signer::key_id(key.as_ref()))
            );
        }
    }
}
