//! A signed approval: a person's statement that they approve one revision of one release, for
//! one image digest and one model version, until an expiry, signed with their own key in a DSSE
//! envelope (the same cosign ECDSA P-256 keys as image signing).
//!
//! The envelope's payload type is [`APPROVAL_PAYLOAD_TYPE`], never in-toto's, so a signed
//! approval can never pass for an attestation (nor the reverse): DSSE signs the type with the
//! payload. Who approved is never read from the statement: it is whoever owns the key that
//! verifies it (`[policy.approvals] keys` names each key's owner).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slipway_core::{Digest, ModelVersion, ReleaseId};

use crate::dsse::Envelope;
use crate::{Error, Signer, Verifier};

/// DSSE payload type of an approval statement.
pub const APPROVAL_PAYLOAD_TYPE: &str = "application/vnd.slipway.approval.v1+json";

/// What an approver signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStatement {
    /// Which release (`namespace/name`).
    pub release: ReleaseId,
    /// The revision approved (the paused one).
    pub revision: u64,
    /// The image digest approved.
    pub digest: String,
    /// The model version approved.
    pub model: ModelVersion,
    /// Why, in the approver's words.
    pub reason: String,
    /// When it was signed.
    pub at: Timestamp,
    /// When it stops counting.
    pub expires: Timestamp,
}

impl ApprovalStatement {
    /// The digest approved, parsed.
    pub fn digest(&self) -> Result<Digest, String> {
        Digest::parse(&self.digest).map_err(|err| err.to_string())
    }
}

/// Signs `statement` with the approver's key.
pub fn sign_approval(
    signer: &dyn Signer,
    statement: &ApprovalStatement,
) -> Result<Envelope, Error> {
    let payload = serde_json::to_vec(statement).map_err(|err| Error::Key {
        key: signer.key_id(),
        message: format!("encoding the approval statement failed: {err}"),
    })?;
    Envelope::sign(signer, APPROVAL_PAYLOAD_TYPE, &payload)
}

/// The approval in `envelope` and who signed it: the name of the first of `keys` (owner, key)
/// whose key verifies it. Fails, saying why, when the type is not an approval's, no key
/// verifies it, or the statement does not parse.
pub fn verify_approval(
    envelope: &Envelope,
    keys: &[(&str, &dyn Verifier)],
) -> Result<(String, ApprovalStatement), String> {
    if envelope.payload_type != APPROVAL_PAYLOAD_TYPE {
        return Err(format!(
            "the envelope holds `{}`, not an approval",
            envelope.payload_type
        ));
    }
    let verifiers: Vec<&dyn Verifier> = keys.iter().map(|(_, key)| *key).collect();
    let key_id = envelope.verify(&verifiers).map_err(|_| {
        format!(
            "its signature verifies with none of the {} approver key(s) of policy.approvals.keys",
            keys.len()
        )
    })?;
    let owner = keys
        .iter()
        .find(|(_, key)| key.key_id() == key_id)
        .map(|(owner, _)| (*owner).to_owned())
        .unwrap_or_default();
    let payload = envelope.payload_bytes()?;
    let statement: ApprovalStatement = serde_json::from_slice(&payload)
        .map_err(|err| format!("the signed statement is not an approval: {err}"))?;
    Ok((owner, statement))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EcdsaP256Key;

    fn statement() -> ApprovalStatement {
        ApprovalStatement {
            release: ReleaseId::parse("ml/iris").expect("release"),
            revision: 4,
            digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                .to_owned(),
            model: ModelVersion {
                name: "iris".to_owned(),
                version: 7,
            },
            reason: "dashboards reviewed".to_owned(),
            at: "2024-06-04T09:00:00Z".parse().expect("timestamp"),
            expires: "2024-06-05T09:00:00Z".parse().expect("timestamp"),
        }
    }

    #[test]
    fn the_owner_is_whoever_holds_the_verifying_key() {
        let maria = EcdsaP256Key::generate();
        let bob = EcdsaP256Key::generate();
        let (maria_pub, bob_pub) = (maria.public(), bob.public());
        let keys: [(&str, &dyn Verifier); 2] = [("bob", &bob_pub), ("maria.chen", &maria_pub)];
        let envelope = sign_approval(&maria, &statement()).expect("sign");
        assert_eq!(
            verify_approval(&envelope, &keys),
            Ok(("maria.chen".to_owned(), statement()))
        );

        // An unknown key, a changed statement and an in-toto type all fail.
        let stranger = sign_approval(&EcdsaP256Key::generate(), &statement()).expect("sign");
        assert!(verify_approval(&stranger, &keys).is_err());
        let mut edited = envelope.clone();
        let mut changed = statement();
        changed.revision = 5;
        edited.payload = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            serde_json::to_vec(&changed).expect("json"),
        );
        assert!(verify_approval(&edited, &keys).is_err());
        let mut retyped = envelope;
        retyped.payload_type = crate::dsse::IN_TOTO_PAYLOAD_TYPE.to_owned();
        assert!(verify_approval(&retyped, &keys).is_err());
    }
}
