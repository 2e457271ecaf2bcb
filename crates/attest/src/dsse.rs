//! DSSE (Dead Simple Signing Envelope) v1, the envelope cosign puts in-toto attestations in.
//!
//! The signature covers the pre-authentication encoding (PAE), never the payload alone:
//! `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths in ASCII decimal bytes.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::{Error, Signer, Verifier};

/// Media type of a DSSE envelope layer (cosign's `.att` layers).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The pre-authentication encoding of `payload` with `payload_type`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// A DSSE envelope as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// What the payload is, e.g. [`IN_TOTO_PAYLOAD_TYPE`].
    pub payload_type: String,
    /// Base64 of the payload.
    pub payload: String,
    /// One entry per signer.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeSignature {
    /// Key hint; cosign writes it empty, and so do we (verifiers must not trust it anyway).
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the DER ECDSA signature over the PAE.
    pub sig: String,
}

/// Decodes base64 in any of the alphabets DSSE producers use (standard, or URL-safe as Google
/// Cloud Build writes), padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

impl Envelope {
    /// Signs `payload` with `signer`.
    pub fn sign(
        signer: &dyn Signer,
        payload_type: &str,
        payload: &[u8],
    ) -> Result<Envelope, Error> {
        let signature = signer.sign(&pae(payload_type, payload))?;
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: STANDARD.encode(signature),
            }],
        })
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, String> {
        decode_base64(&self.payload).ok_or_else(|| "the envelope payload is not base64".to_owned())
    }

    /// The id of the first trusted key that signed the envelope, or why none did.
    pub fn verify(&self, keys: &[&dyn Verifier]) -> Result<String, String> {
        let payload = self.payload_bytes()?;
        let encoded = pae(&self.payload_type, &payload);
        for signature in &self.signatures {
            let Some(bytes) = decode_base64(&signature.sig) else {
                continue;
            };
            if let Some(key) = keys.iter().find(|key| key.verify(&encoded, &bytes)) {
                return Ok(key.key_id());
            }
        }
        Err(format!(
            "none of the envelope's {} signature(s) verifies with any of the {} trusted key(s)",
            self.signatures.len(),
            keys.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EcdsaP256Key;

    #[test]
    fn pae_matches_the_spec_example() {
        // The example from the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn sign_and_verify() {
        let key = EcdsaP256Key::generate();
        let envelope = Envelope::sign(&key, IN_TOTO_PAYLOAD_TYPE, b"{}").expect("sign");
        let public = key.public();
        assert_eq!(envelope.verify(&[&public]), Ok(crate::Signer::key_id(&key)));
        let mut retyped = envelope.clone();
        retyped.payload_type = "text/plain".into();
        assert!(
            retyped.verify(&[&public]).is_err(),
            "the type is signed too"
        );
        let other = EcdsaP256Key::generate().public();
        assert_eq!(
            envelope.verify(&[&other]),
            Err(
                "none of the envelope's 1 signature(s) verifies with any of the 1 trusted key(s)"
                    .to_owned()
            )
        );
    }
}
