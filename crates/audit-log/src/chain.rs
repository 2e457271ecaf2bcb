//! The hash chain and entry signatures: building entries and verifying a sequence of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use slipway_attest::{Signer, Verifier};

use slipway_core::ReleaseRecord;

use crate::{Error, Event};

/// `prev` of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The deploy key's signature over [`signed_payload`] of `hash`, when the store signs.
    /// Not part of the hash: the hash covers the content, the signature covers the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<EntrySignature>,
}

/// A signature over an entry's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntrySignature {
    /// Fingerprint of the signing key (as `slipway_attest::Signer::key_id` gives it).
    pub key_id: String,
    /// Base64 DER ECDSA signature over SHA-256 of [`signed_payload`].
    pub signature: String,
}

/// Domain separation: a signature over an audit entry can never pass for a signature over
/// something else the deploy key signs (cosign payloads, DSSE envelopes), nor the reverse.
const SIGNED_PREFIX: &str = "slipway.dev/audit-entry/v1\n";

/// The bytes signed for an entry with hash `hash`: `slipway.dev/audit-entry/v1\n<hash>`.
pub fn signed_payload(hash: &str) -> Vec<u8> {
    format!("{SIGNED_PREFIX}{hash}").into_bytes()
}

/// The last entry a reader saw: used to detect a truncated trail. The same type as a release
/// record's `trail_head`, so a head kept in the release history is checked as it is.
pub type Head = slipway_core::TrailHead;

/// Something wrong with the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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
    /// Feeds the JSON straight into the hasher: no buffer per entry, which `verify` of a
    /// million-entry trail notices.
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = HashWriter(Sha256::new());
    // Serialising these types into a writer that never fails cannot fail either.
    let _ = serde_json::to_writer(
        &mut hasher,
        &Hashed {
            seq,
            at,
            prev,
            event,
        },
    );
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in hasher.0.finalize() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
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
            signature: None,
        }
    }

    /// Signs this entry's hash with `signer`, replacing any signature it had.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), Error> {
        let signature = signer
            .sign(&signed_payload(&self.hash))
            .map_err(|source| Error::Sign {
                seq: self.seq,
                key_id: signer.key_id(),
                source: Box::new(source),
            })?;
        self.signature = Some(EntrySignature {
            key_id: signer.key_id(),
            signature: STANDARD.encode(signature),
        });
        Ok(())
    }

    /// The entry that follows `last`, signed when a signer is given.
    pub fn next_signed(
        last: Option<&Entry>,
        at: Timestamp,
        event: Event,
        signer: Option<&dyn Signer>,
    ) -> Result<Entry, Error> {
        let mut entry = Entry::next(last, at, event);
        if let Some(signer) = signer {
            entry.sign(signer)?;
        }
        Ok(entry)
    }

    /// Whether this entry is the link that follows `previous` (the entry before it as stored, or
    /// `None` for the first): its sequence number follows on, its `prev` is the previous
    /// entry's hash, and its content matches its own hash. Readers that must trust single
    /// entries (the approval gate) keep only those that link.
    pub fn links_to(&self, previous: Option<&Entry>) -> bool {
        let (expected_seq, expected_prev) =
            previous.map_or((1, GENESIS), |p| (p.seq + 1, p.hash.as_str()));
        self.seq == expected_seq
            && self.prev == expected_prev
            && hash_of(self.seq, &self.at, &self.prev, &self.event) == self.hash
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
    let mut verifier = ChainVerifier::new(expected_head.cloned());
    for entry in entries {
        verifier.push(entry);
    }
    verifier.finish()
}

/// [`verify`] one entry at a time, keeping only the previous entry's sequence number and hash
/// (and the expected head's): a trail of any length is checked in constant memory.
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    previous: Option<Head>,
    /// Heads the trail must reach, each with whether its entry was seen and its hash matched.
    expected: Vec<(Head, Option<bool>)>,
    /// Release records the trail must hold (as `Event::Release`), each with whether it did.
    records: Vec<(ReleaseRecord, bool)>,
    problems: Vec<ChainProblem>,
}

impl ChainVerifier {
    /// A verifier for a trail that must reach `expected_head` when one is given.
    pub fn new(expected_head: Option<Head>) -> ChainVerifier {
        let mut verifier = ChainVerifier::default();
        if let Some(head) = expected_head {
            verifier.expect_head(head);
        }
        verifier
    }

    /// Also requires the trail to reach `head` (call before the first [`ChainVerifier::push`]).
    pub fn expect_head(&mut self, head: Head) {
        if !self.expected.iter().any(|(known, _)| known == &head) {
            self.expected.push((head, None));
        }
    }

    /// Also requires the trail to reach a release record taken from the release history: the
    /// head it carries, and the record's own entry, which is appended after it. So a trail cut
    /// anywhere after the record's head, including just after the record's entry's
    /// predecessor, is caught.
    pub fn expect_release_record(&mut self, record: ReleaseRecord) {
        if let Some(head) = record.trail_head.clone() {
            self.expect_head(head);
        }
        self.records.push((record, false));
    }

    /// Checks the next entry against the one before it.
    pub fn push(&mut self, entry: &Entry) {
        if let Event::Release(recorded) = &entry.event {
            for (record, found) in &mut self.records {
                if !*found && recorded == record {
                    *found = true;
                }
            }
        }
        let expected_seq = self.previous.as_ref().map_or(1, |p| p.seq + 1);
        if entry.seq != expected_seq {
            self.problems.push(ChainProblem {
                seq: entry.seq,
                problem: format!(
                    "expected entry {expected_seq}, found {}: entries missing or reordered",
                    entry.seq
                ),
            });
        }
        let expected_prev = self.previous.as_ref().map_or(GENESIS, |p| p.hash.as_str());
        if entry.prev != expected_prev {
            self.problems.push(ChainProblem {
                seq: entry.seq,
                problem: "does not chain to the entry before it".to_owned(),
            });
        }
        if hash_of(entry.seq, &entry.at, &entry.prev, &entry.event) != entry.hash {
            self.problems.push(ChainProblem {
                seq: entry.seq,
                problem: "content does not match its hash: the entry was modified".to_owned(),
            });
        }
        for (head, seen) in &mut self.expected {
            if head.seq == entry.seq && seen.is_none() {
                *seen = Some(head.hash == entry.hash);
            }
        }
        match &mut self.previous {
            Some(previous) => {
                previous.seq = entry.seq;
                previous.hash.clone_from(&entry.hash);
            }
            None => self.previous = Some(entry.head()),
        }
    }

    /// The last entry pushed.
    pub fn head(&self) -> Option<&Head> {
        self.previous.as_ref()
    }

    /// Every problem found, including truncation against the expected head.
    pub fn finish(mut self) -> Vec<ChainProblem> {
        for (head, seen) in &self.expected {
            match seen {
                None => self.problems.push(ChainProblem {
                    seq: head.seq,
                    problem: format!(
                        "trail ends at entry {} but entry {} was seen before: it was truncated",
                        self.previous.as_ref().map_or(0, |p| p.seq),
                        head.seq
                    ),
                }),
                Some(false) => self.problems.push(ChainProblem {
                    seq: head.seq,
                    problem: "entry differs from the one seen before: history was rewritten"
                        .to_owned(),
                }),
                Some(true) => {}
            }
        }
        for (record, found) in &self.records {
            if !found {
                let after = record.trail_head.as_ref().map_or(0, |head| head.seq);
                self.problems.push(ChainProblem {
                    seq: after + 1,
                    problem: format!(
                        "trail ends at entry {} without the entry of revision {} of `{}` ({}), which the release history holds and which follows entry {after}: it was truncated (or the entry was never written)",
                        self.previous.as_ref().map_or(0, |p| p.seq),
                        record.revision,
                        record.release,
                        record.outcome
                    ),
                });
            }
        }
        self.problems
    }
}

/// Refuses to extend a trail whose sequence numbers do not follow on from 1 (an entry far ahead,
/// or one removed): the next entry would have no well-defined number, and chaining onto the gap
/// would make it permanent. `location` names the trail in the error.
pub fn check_sequence<'a>(
    location: &str,
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Result<(), Error> {
    for (expected, entry) in (1..).zip(entries) {
        if entry.seq != expected {
            return Err(Error::SequenceGap {
                location: location.to_owned(),
                expected,
                found: entry.seq,
            });
        }
    }
    Ok(())
}

/// Checks every entry's signature against the trusted `keys`: lists each entry that is unsigned,
/// signed by a key that is not trusted, or whose signature does not verify over its hash. An
/// entry whose content no longer matches its hash is [`verify`]'s to report; a signature still
/// proves who wrote the hash, so a whole rewritten chain (content and hashes recomputed) fails
/// here even though [`verify`] finds it consistent.
pub fn verify_signatures(entries: &[Entry], keys: &[&dyn Verifier]) -> Vec<ChainProblem> {
    entries
        .iter()
        .filter_map(|entry| verify_signature(entry, keys))
        .collect()
}

/// [`verify_signature`] with one exception: an approval carrying a statement signed by an
/// approver (`ApprovalSource::Signed`) may instead be signed by one of `approver_keys`, since
/// `slipway-deploy approve --key` run where no deploy key is configured signs the entry with the
/// approver's key. Every other entry needs one of `trusted`.
pub fn verify_entry_signature(
    entry: &Entry,
    trusted: &[&dyn Verifier],
    approver_keys: &[&dyn Verifier],
) -> Option<ChainProblem> {
    match &entry.event {
        Event::Approval(record)
            if matches!(record.source, crate::ApprovalSource::Signed { .. })
                && !approver_keys.is_empty() =>
        {
            let keys: Vec<&dyn Verifier> = trusted.iter().chain(approver_keys).copied().collect();
            verify_signature(entry, &keys)
        }
        _ => verify_signature(entry, trusted),
    }
}

/// [`verify_signatures`] for one entry: the problem with its signature, if any.
pub fn verify_signature(entry: &Entry, keys: &[&dyn Verifier]) -> Option<ChainProblem> {
    let problem = match &entry.signature {
        None => Some("unsigned: the entry carries no signature".to_owned()),
        Some(signed) => match keys.iter().find(|key| key.key_id() == signed.key_id) {
            None => Some(format!(
                "signed by key `{}`, which is not among the {} trusted key(s)",
                signed.key_id,
                keys.len()
            )),
            Some(key) => {
                let valid = STANDARD
                    .decode(&signed.signature)
                    .is_ok_and(|der| key.verify(&signed_payload(&entry.hash), &der));
                (!valid).then(|| {
                    format!(
                        "signature by key `{}` does not verify: the entry's hash or its signature was changed",
                        signed.key_id
                    )
                })
            }
        },
    };
    problem.map(|problem| ChainProblem {
        seq: entry.seq,
        problem,
    })
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

    fn signed_chain(n: u64, signer: &dyn Signer) -> Vec<Entry> {
        let mut entries = chain(n);
        for entry in &mut entries {
            entry.sign(signer).expect("sign");
        }
        entries
    }

    #[test]
    fn an_approver_key_vouches_for_its_own_signed_approval_only() {
        let deploy = slipway_attest::EcdsaP256Key::generate();
        let approver = slipway_attest::EcdsaP256Key::generate();
        let (deploy_pub, approver_pub) = (deploy.public(), approver.public());
        let trusted: [&dyn Verifier; 1] = [&deploy_pub];
        let approvers: [&dyn Verifier; 1] = [&approver_pub];
        let envelope =
            slipway_attest::dsse::Envelope::sign(&approver, "application/x", b"{}").expect("sign");
        let record = |source| {
            Event::Approval(crate::ApprovalRecord {
                release: ReleaseId::parse("ml/iris").expect("id"),
                approver: "maria.chen".into(),
                at: Timestamp::UNIX_EPOCH,
                reason: "ok".into(),
                digest: slipway_core::Digest::parse(
                    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                )
                .expect("digest"),
                model: slipway_core::ModelVersion {
                    name: "iris".into(),
                    version: 2,
                },
                revision: Some(3),
                expires: None,
                source,
            })
        };
        let signed_by_approver = |event| {
            let mut entry = Entry::next(None, Timestamp::UNIX_EPOCH, event);
            entry.sign(&approver).expect("sign");
            entry
        };
        let signed = signed_by_approver(record(crate::ApprovalSource::Signed { envelope }));
        assert_eq!(verify_entry_signature(&signed, &trusted, &approvers), None);
        assert!(verify_entry_signature(&signed, &trusted, &[]).is_some());
        // The approver's key proves nothing about any other entry.
        let github = signed_by_approver(record(crate::ApprovalSource::GitHub {
            repository: "acme/iris".into(),
            run_id: 42,
            environment: "production".into(),
        }));
        assert!(verify_entry_signature(&github, &trusted, &approvers).is_some());
        let decision = signed_by_approver(chain(1).remove(0).event);
        assert!(verify_entry_signature(&decision, &trusted, &approvers).is_some());
    }

    #[test]
    fn signatures_verify_only_with_the_signing_key() {
        let key = slipway_attest::EcdsaP256Key::generate();
        let other = slipway_attest::EcdsaP256Key::generate();
        let entries = signed_chain(3, &key);
        let public = key.public();
        assert!(verify_signatures(&entries, &[&public]).is_empty());

        let other_public = other.public();
        let problems = verify_signatures(&entries, &[&other_public]);
        assert_eq!(problems.len(), 3);
        assert!(problems[0].problem.contains("not among the 1 trusted key"));

        let mut unsigned = entries.clone();
        unsigned[1].signature = None;
        let problems = verify_signatures(&unsigned, &[&public]);
        assert_eq!(
            problems,
            [ChainProblem {
                seq: 2,
                problem: "unsigned: the entry carries no signature".into()
            }]
        );

        // A signature moved from one entry to another does not verify over the other's hash.
        let mut moved = entries.clone();
        moved[2].signature = moved[0].signature.clone();
        let problems = verify_signatures(&moved, &[&public]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].seq, 3);
        assert!(problems[0].problem.contains("does not verify"));
    }

    #[test]
    fn a_rewritten_chain_is_consistent_but_its_signatures_fail() {
        let key = slipway_attest::EcdsaP256Key::generate();
        let entries = signed_chain(3, &key);
        // Whoever can write the store edits entry 2 and recomputes every hash after it.
        let mut rewritten: Vec<Entry> = Vec::new();
        for (idx, entry) in entries.iter().enumerate() {
            let mut event = entry.event.clone();
            if idx == 1
                && let Event::Decision { verdict, .. } = &mut event
            {
                *verdict = "fail".into();
            }
            let mut next = Entry::next(rewritten.last(), entry.at, event);
            next.signature = entry.signature.clone();
            rewritten.push(next);
        }
        assert!(
            verify(&rewritten, None).is_empty(),
            "the chain alone is fooled"
        );
        let public = key.public();
        let problems = verify_signatures(&rewritten, &[&public]);
        assert_eq!(
            problems.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [2, 3],
            "{problems:?}"
        );
    }

    #[test]
    fn the_signed_payload_is_domain_separated() {
        assert_eq!(
            signed_payload("ab12"),
            b"slipway.dev/audit-entry/v1\nab12".to_vec()
        );
    }
}
