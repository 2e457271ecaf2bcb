//! ECDSA P-256 keys: generation, PEM for public keys, fingerprints.

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest as _, Sha256};

use crate::{Error, Signer, Verifier};

/// A P-256 private key held in memory.
pub struct EcdsaP256Key {
    key: SigningKey,
}

impl std::fmt::Debug for EcdsaP256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaP256Key({})", self.public().key_id())
    }
}

/// A P-256 public key.
#[derive(Debug, Clone)]
pub struct EcdsaP256PublicKey {
    key: VerifyingKey,
}

impl EcdsaP256Key {
    /// Generates a new key from the OS random source.
    pub fn generate() -> EcdsaP256Key {
        EcdsaP256Key {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// A key from a 32-byte secret scalar. Deterministic keys are for dry runs and tests, whose
    /// output must not change from run to run; real keys come from `generate` or a key file.
    pub fn from_secret_bytes(name: &str, bytes: &[u8; 32]) -> Result<EcdsaP256Key, Error> {
        SigningKey::from_bytes(bytes.into())
            .map(|key| EcdsaP256Key { key })
            .map_err(|err| Error::Key {
                key: name.to_owned(),
                message: format!("not a valid P-256 secret scalar ({err})"),
            })
    }

    pub(crate) fn from_signing_key(key: SigningKey) -> EcdsaP256Key {
        EcdsaP256Key { key }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public half.
    pub fn public(&self) -> EcdsaP256PublicKey {
        EcdsaP256PublicKey {
            key: *self.key.verifying_key(),
        }
    }
}

impl EcdsaP256PublicKey {
    /// Reads a `-----BEGIN PUBLIC KEY-----` PEM (the format of `cosign.pub`).
    pub fn from_pem(name: &str, pem: &str) -> Result<EcdsaP256PublicKey, Error> {
        VerifyingKey::from_public_key_pem(pem.trim()).map(|key| EcdsaP256PublicKey { key }).map_err(|err| Error::Key {
            key: name.to_owned(),
            message: format!("not a P-256 public key in PEM form ({err})\n\nhint: pass the `cosign.pub` written by `cosign generate-key-pair`"),
        })
    }

    /// The PEM form.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|err| Error::Key {
                key: self.key_id(),
                message: err.to_string(),
            })
    }
}

impl Signer for EcdsaP256Key {
    fn key_id(&self) -> String {
        self.public().key_id()
    }

    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let signature: DerSignature = self.key.sign(payload);
        Ok(signature.as_bytes().to_vec())
    }
}

impl Verifier for EcdsaP256PublicKey {
    fn key_id(&self) -> String {
        let der = self
            .key
            .to_public_key_der()
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default();
        let hash = Sha256::digest(der);
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("SHA256:{}", &hex[..32])
    }

    fn verify(&self, payload: &[u8], signature: &[u8]) -> bool {
        DerSignature::try_from(signature)
            .is_ok_and(|signature| self.key.verify(payload, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_pem_round_trip() {
        let key = EcdsaP256Key::generate();
        let signature = key.sign(b"payload").expect("sign");
        let public = EcdsaP256PublicKey::from_pem("test", &key.public().to_pem().expect("pem"))
            .expect("parse");
        assert_eq!(public.key_id(), key.key_id());
        assert!(public.verify(b"payload", &signature));
        assert!(!public.verify(b"tampered", &signature));
        assert!(
            !EcdsaP256Key::generate()
                .public()
                .verify(b"payload", &signature),
            "other key"
        );
        let bad = EcdsaP256PublicKey::from_pem("cosign.pub", "not a key").expect_err("garbage");
        assert!(
            bad.to_string()
                .starts_with("key `cosign.pub`: not a P-256 public key"),
            "{bad}"
        );
    }
}
