//! Signing, verification and attestations of images, compatible with cosign's key-based formats.
//!
//! - [`Signer`] and [`Verifier`]: the key boundary (a key in memory, in a file, later a KMS).
//! - [`EcdsaP256Key`] / [`EcdsaP256PublicKey`]: ECDSA P-256 over SHA-256, the algorithm of
//!   `cosign generate-key-pair`; the key id is the SHA-256 fingerprint of the public key's DER.
//!   [`keyfile`] reads and writes `cosign.key` (encrypted PEM) and `cosign.pub`.
//! - [`sign_image`] / [`verify_image`]: cosign's "simple signing" payload stored as a layer under
//!   the `sha256-<hex>.sig` tag. Signing *appends* to the signatures already there (sigstore-rs's
//!   `push_signature` replaces them; we must not lose anyone's signature).
//! - [`attestation`]: in-toto statements in DSSE envelopes ([`dsse`]) under `sha256-<hex>.att`,
//!   also appended; [`provenance`] (SLSA v1) and [`model_link`] (image ↔ MLflow model) build on it.
//! - [`trust_root`]: which Sigstore trusted root keyless verification uses (configured,
//!   refreshed or built in) and its refresh through sigstore's TUF repository.
//!
//! Key design decision: the crypto is done here with RustCrypto (`p256`, `scrypt`,
//! `crypto_secretbox`), not through the `sigstore` crate. sigstore 0.15 cannot create `.att`
//! attestations with a key, replaces signatures on push, and its `cosign` feature compiles
//! Fulcio, Rekor and OAuth code we must never call; the formats are small and specified, and the
//! fixtures from sigstore-rs and slsa-verifier in the tests pin our output to theirs. Crypto and
//! payload building are plain functions over bytes; registry I/O goes through the
//! `slipway_registry::Registry` trait. No Fulcio or Rekor, and verification is offline except for
//! the registry; the only TUF client is [`trust_root::refresh`], a command of its own that no
//! verification or release calls.

pub mod approval;
pub mod attestation;
pub mod bundle;
pub mod dsse;
mod key;
pub mod keyfile;
pub mod model_link;
pub mod provenance;
mod simple_signing;
pub mod trust_root;

pub use key::{EcdsaP256Key, EcdsaP256PublicKey};
pub use simple_signing::{
    LEGACY_SIGNATURE_SOURCE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, SignOptions,
    SignatureCheck, VerificationReport, VerifyOptions, docker_reference_note, sign_image,
    sign_image_with, simple_signing_payload, verify_image, verify_image_with,
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
    /// A command-line flag (or its configuration twin) is not usable.
    #[error("`{flag}`: {message}")]
    Flag {
        /// Which flag, as typed (`--certificate-identity-regexp`).
        flag: String,
        /// What is wrong, with a hint.
        message: String,
    },
    /// The image must be pinned by digest.
    #[error(
        "`{image}` is not pinned by digest\n\nhint: resolve the tag to a digest first; signatures bind digests, not tags"
    )]
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
