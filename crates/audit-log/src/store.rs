//! [`MemoryAuditStore`] and [`FileAuditStore`].

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use slipway_attest::Signer;

use crate::{AuditStore, Damage, DamageKind, Entry, Error, Event, Head, Trail};

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

    async fn head(&self) -> Result<Option<Head>, Error> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .map(Entry::head))
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
    /// Serialises appends from this process' threads; an exclusive lock on the file serialises
    /// appends from separate processes.
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
        let mut entries = Vec::new();
        let damage = self.read_each(|entry| entries.push(entry))?;
        Ok(Trail { entries, damage })
    }

    /// Reads the trail line by line under a shared lock, handing each readable entry to
    /// `on_entry`, oldest first, and returns the damage found. Holds one line at a time, so a
    /// trail of any length is read in constant memory (`slipway-audit verify` streams with it).
    pub fn read_each(&self, on_entry: impl FnMut(Entry)) -> Result<Vec<Damage>, Error> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.io("open")(err)),
        };
        // A shared lock: never a line an appender is still writing.
        file.lock_shared().map_err(self.io("lock"))?;
        self.scan(&file, on_entry)
    }

    /// [`FileAuditStore::read_each`] over an open (and locked) file.
    fn scan(
        &self,
        file: &std::fs::File,
        mut on_entry: impl FnMut(Entry),
    ) -> Result<Vec<Damage>, Error> {
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
        let mut damage = Vec::new();
        let mut line = Vec::with_capacity(1024);
        let mut start: u64 = 0;
        let mut line_number: u64 = 0;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(self.io("read"))?;
            if read == 0 {
                return Ok(damage);
            }
            line_number += 1;
            let terminated = line.last() == Some(&b'\n');
            if terminated {
                line.pop();
            }
            if let Some(found) = parse_line(&self.path, &line, terminated, start, line_number) {
                match found {
                    Ok(entry) => on_entry(entry),
                    Err(found) => damage.push(found),
                }
            }
            start += read as u64;
        }
    }
}

/// Reads one line of a trail file that starts at byte `start`. Every write ends with its
/// newline, so only a last line without one can be a write that did not finish (and is never
/// an entry, even when its JSON is complete). A line that ends with its newline and does not
/// parse was complete once and changed afterwards: that is tampering, wherever it sits, and the
/// repair keeps it as evidence.
fn parse_line(
    path: &Path,
    line: &[u8],
    terminated: bool,
    start: u64,
    line_number: u64,
) -> Option<Result<Entry, Damage>> {
    if terminated && line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let location = || format!("`{}` line {line_number}", path.display());
    let parsed = serde_json::from_slice::<Entry>(line);
    Some(match (parsed, terminated) {
        (Ok(entry), true) => Ok(entry),
        (parsed, false) => {
            let detail = match parsed {
                Ok(_) => "truncated last write: the entry has no terminating newline, so its write did not finish".to_owned(),
                Err(err) => format!(
                    "truncated last write: the last line is not a complete entry ({err})"
                ),
            };
            let quoted_path = quoted(path);
            Err(Damage {
                kind: DamageKind::TruncatedWrite,
                location: location(),
                detail,
                repair: format!(
                    "the last write was cut short (a crash or a full disk) and never acknowledged, so it is not an entry; keep a copy and remove it with `cp -p {quoted_path} {quoted_torn} && truncate -s {start} {quoted_path}` (keeps the {start} bytes of complete entries), then run `slipway-audit verify`",
                    quoted_torn = quoted(&torn_copy(path)),
                ),
            })
        }
        (Err(err), true) => Err(Damage {
            kind: DamageKind::Unreadable,
            location: location(),
            detail: format!(
                "not a valid entry ({err}): the line ends with its newline, so it was written whole and changed afterwards"
            ),
            repair: "this is tampering or corruption, not a cut-short write; keep the file as evidence (do not edit or truncate it), find who changed it, and restore the trail from a backup into a new file".to_owned(),
        }),
    })
}

/// Where the repair of a torn write keeps the torn bytes.
fn torn_copy(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".torn");
    PathBuf::from(name)
}

#[async_trait::async_trait]
impl AuditStore for FileAuditStore {
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error> {
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let parent = self
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty());
        if let Some(parent) = parent {
            std::fs::create_dir_all(parent).map_err(self.io("create directory"))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(self.io("open"))?;
        // Held from reading the head to the fsync (released when `file` closes): two processes
        // appending at once would otherwise both chain onto the same head and fork the trail.
        file.lock().map_err(self.io("lock"))?;
        let mut last: Option<Entry> = None;
        let mut gap: Option<(u64, u64)> = None;
        let damage = self.scan(&file, |entry| {
            let expected = last.as_ref().map_or(1, |last| last.seq + 1);
            if entry.seq != expected && gap.is_none() {
                gap = Some((expected, entry.seq));
            }
            last = Some(entry);
        })?;
        if let Some(damage) = damage.into_iter().next() {
            let mut err = damage.into_error();
            if let Error::Damaged { detail, .. } = &mut err {
                *detail = format!("refusing to append: {detail}");
            }
            return Err(err);
        }
        if let Some((expected, found)) = gap {
            return Err(Error::SequenceGap {
                location: format!("`{}`", self.path.display()),
                expected,
                found,
            });
        }
        let entry = Entry::next_signed(last.as_ref(), at, event, self.signer.as_deref())?;
        let mut line = serde_json::to_vec(&entry)
            .map_err(|err| self.io("encode")(std::io::Error::other(err)))?;
        line.push(b'\n');
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

    async fn head(&self) -> Result<Option<Head>, Error> {
        let mut last = None;
        self.read_each(|entry| last = Some(entry))?;
        Ok(last.as_ref().map(Entry::head))
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
    async fn a_complete_last_line_that_does_not_parse_is_tampering_and_kept() {
        let (_dir, path, first_len) = torn_trail(|len| len).await;
        let mut bytes = std::fs::read(&path).expect("read");
        // Someone edits the last entry: the line still ends with its newline.
        bytes[first_len] = b'X';
        std::fs::write(&path, &bytes).expect("write");
        let store = FileAuditStore::new(&path);
        let trail = store.read().await.expect("read");
        assert_eq!(trail.entries.len(), 1);
        let damage = &trail.damage[0];
        assert_eq!(damage.kind, DamageKind::Unreadable, "{damage:?}");
        assert!(damage.location.ends_with("line 2"), "{damage:?}");
        assert!(damage.detail.contains("changed afterwards"), "{damage:?}");
        assert!(
            !damage.repair.contains("truncate -s")
                && damage.repair.contains("keep the file as evidence"),
            "the repair must not delete evidence: {damage:?}"
        );
        let err = store
            .append(at(), event("three"))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("refusing to append"), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "nothing written"
        );
    }

    #[tokio::test]
    async fn append_refuses_a_sequence_gap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trail.jsonl");
        let store = FileAuditStore::new(&path);
        let first = store.append(at(), event("one")).await.expect("append");
        // An entry far ahead, chained and hashed correctly, written by hand.
        let mut far = Entry::next(Some(&first), at(), event("far"));
        far.seq = 1_000_000;
        let far = Entry::next(
            Some(&Entry {
                seq: far.seq - 1,
                ..first.clone()
            }),
            at(),
            event("far"),
        );
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str(&serde_json::to_string(&far).expect("json"));
        text.push('\n');
        std::fs::write(&path, &text).expect("write");

        let err = store
            .append(at(), event("next"))
            .await
            .expect_err("a gap is refused");
        assert!(
            matches!(
                err,
                Error::SequenceGap {
                    expected: 2,
                    found: 1_000_000,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("expected entry 2, found entry 1000000") && message.contains("hint: "),
            "{message}"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
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
