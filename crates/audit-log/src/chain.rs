//! The hash chain: building entries and verifying a sequence of them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Event;

/// `prev` of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1-based position.
    pub seq: u64,
    /// When it was written.
    pub at: Timestamp,
    /// Hash of the previous entry (zeros for the first).
    pub prev: String,
    /// What happened.
    pub event: Event,
    /// SHA-256 over `(seq, at, prev, event)` as compact JSON.
    pub hash: String,
}

/// The last entry a reader saw: used to detect a truncated trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// Something wrong with the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    /// The entry where it shows (0 when about the whole trail).
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

fn hash_of(seq: u64, at: &Timestamp, prev: &str, event: &Event) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        seq: u64,
        at: &'a Timestamp,
        prev: &'a str,
        event: &'a Event,
    }
    let bytes = serde_json::to_vec(&Hashed {
        seq,
        at,
        prev,
        event,
    })
    .unwrap_or_default();
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Entry {
    /// Builds the entry that follows `last` (or the first one).
    pub fn next(last: Option<&Entry>, at: Timestamp, event: Event) -> Entry {
        let seq = last.map_or(1, |entry| entry.seq + 1);
        let prev = last.map_or_else(|| GENESIS.to_owned(), |entry| entry.hash.clone());
        let hash = hash_of(seq, &at, &prev, &event);
        Entry {
            seq,
            at,
            prev,
            event,
            hash,
        }
    }

    /// This entry as a head to remember.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Checks the chain: each hash matches its content (tampering), sequence numbers follow on
/// (gaps, reordering), each `prev` is the previous hash (removal, insertion), and, given the head
/// a reader saw last, that the trail still reaches it (truncation). Lists every problem.
pub fn verify(entries: &[Entry], expected_head: Option<&Head>) -> Vec<ChainProblem> {
    let mut problems = Vec::new();
    let mut previous: Option<&Entry> = None;
    for entry in entries {
        let expected_seq = previous.map_or(1, |p| p.seq + 1);
        if entry.seq != expected_seq {
            problems.push(ChainProblem {
                seq: entry.seq,
                problem: format!(
                    "expected entry {expected_seq}, found {}: entries missing or reordered",
                    entry.seq
                ),
            });
        }
        let expected_prev = previous.map_or(GENESIS, |p| p.hash.as_str());
        if entry.prev != expected_prev {
            problems.push(ChainProblem {
                seq: entry.seq,
                problem: "does not chain to the entry before it".to_owned(),
            });
        }
        if hash_of(entry.seq, &entry.at, &entry.prev, &entry.event) != entry.hash {
            problems.push(ChainProblem {
                seq: entry.seq,
                problem: "content does not match its hash: the entry was modified".to_owned(),
            });
        }
        previous = Some(entry);
    }
    if let Some(head) = expected_head {
        match entries.iter().find(|entry| entry.seq == head.seq) {
            None => problems.push(ChainProblem {
                seq: head.seq,
                problem: format!(
                    "trail ends at entry {} but entry {} was seen before: it was truncated",
                    previous.map_or(0, |p| p.seq),
                    head.seq
                ),
            }),
            Some(entry) if entry.hash != head.hash => {
                problems.push(ChainProblem {
                    seq: head.seq,
                    problem: "entry differs from the one seen before: history was rewritten"
                        .to_owned(),
                });
            }
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use slipway_core::ReleaseId;

    use super::*;

    fn chain(n: u64) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::new();
        for idx in 0..n {
            let event = Event::Decision {
                release: ReleaseId::parse("ml/iris").expect("id"),
                stage: "model-gate".into(),
                verdict: "pass".into(),
                detail: format!("check {idx}"),
            };
            let at = Timestamp::from_second(1_700_000_000 + i64::try_from(idx).expect("small"))
                .expect("ts");
            let next = Entry::next(entries.last(), at, event);
            entries.push(next);
        }
        entries
    }

    #[test]
    fn intact_chain_verifies() {
        let entries = chain(4);
        assert!(verify(&entries, Some(&entries[3].head())).is_empty());
    }

    #[test]
    fn tampering_removal_and_truncation_are_found() {
        let entries = chain(4);
        let head = entries[3].head();

        let mut edited = entries.clone();
        if let Event::Decision { verdict, .. } = &mut edited[1].event {
            *verdict = "fail".into();
        }
        let problems = verify(&edited, Some(&head));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].seq, 2);
        assert!(problems[0].problem.contains("modified"));

        let mut removed = entries.clone();
        removed.remove(2);
        let problems = verify(&removed, Some(&head));
        assert_eq!(problems.iter().map(|p| p.seq).collect::<Vec<_>>(), [4, 4]);

        let truncated = &entries[..2];
        assert!(
            verify(truncated, None).is_empty(),
            "a truncated chain is self-consistent"
        );
        let problems = verify(truncated, Some(&head));
        assert!(problems[0].problem.contains("truncated"), "{problems:?}");
    }
}
