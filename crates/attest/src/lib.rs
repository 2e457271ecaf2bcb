//! Signing and verification of images, compatible with cosign's key-based formats.
//!
//! - [`Signer`] and [`Verifier`]: the key boundary (a key in memory, in a file, later a KMS).
//! - [`EcdsaP256Key`] / [`EcdsaP256PublicKey`]: ECDSA P-256 over SHA-256, the algorithm of
//!   `cosign generate-key-pair`; the key id is the SHA-256 fingerprint of the public key's DER.
//! - [`sign_image`] / [`verify_image`]: cosign's "simple signing" payload stored as a layer under
//!   the `sha256-<hex>.sig` tag. Signing *appends* to the signatures already there (sigstore-rs's
//!   `push_signature` replaces them; we must not lose anyone's signature).
//!
//! Key design decision: crypto and payload building are plain functions over bytes; registry I/O
//! goes through the `slipway_registry::Registry` trait. No Fulcio, Rekor or TUF on the key path: offline except
//! for the registry.

mod key;
mod simple_signing;

pub use key::{EcdsaP256Key, EcdsaP256PublicKey};
pub use simple_signing::{
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, SignatureCheck, VerificationReport, sign_image, simple_signing_payload, verify_image,
};

/// Errors from signing and verification.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key could not be read or used.
    #[error("key `{key}`: {message}")]
    Key {
        /// Which key (path or id).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The image must be pinned by digest.
    #[error("`{image}` is not pinned by digest\n\nhint: resolve the tag to a digest first; signatures bind digests, not tags")]
    NotPinned {
        /// The image.
        image: String,
    },
    /// The registry failed.
    #[error("signature storage for `{image}`")]
    Registry {
        /// The image.
        image: String,
        /// What the registry said.
        #[source]
        source: slipway_registry::Error,
    },
}

/// Signs bytes with a private key.
pub trait Signer: Send + Sync {
    /// The key id (fingerprint) shown in every result.
    fn key_id(&self) -> String;
    /// A DER-encoded ECDSA signature over SHA-256 of `payload`.
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Checks signatures with a public key.
pub trait Verifier: Send + Sync {
    /// The key id (fingerprint).
    fn key_id(&self) -> String;
    /// Whether `signature` (DER) is a valid signature of `payload` by this key.
    fn verify(&self, payload: &[u8], signature: &[u8]) -> bool;
}
