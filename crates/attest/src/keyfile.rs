//! cosign's key files: `cosign.key` (encrypted PEM) and `cosign.pub` (SPKI PEM).
//!
//! `cosign.key` is a PEM block labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 2+) or
//! `ENCRYPTED COSIGN PRIVATE KEY` (older cosign) whose body is JSON:
//! `{"kdf":{"name":"scrypt","params":{"N":..,"r":..,"p":..},"salt":"<b64>"},
//!   "cipher":{"name":"nacl/secretbox","nonce":"<b64>"},"ciphertext":"<b64>"}`.
//! The key is scrypt(password, salt) (32 bytes), the ciphertext is a NaCl secretbox
//! (XSalsa20-Poly1305, tag first) of the PKCS#8 DER private key.
//!
//! The password comes from `COSIGN_PASSWORD` (as with cosign) or from a prompt the binary
//! supplies: libraries do not read terminals.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rand_core::RngCore as _;
use slipway_core::Secret;

use crate::{EcdsaP256Key, Error};

/// The environment variable cosign reads the key password from.
pub const COSIGN_PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// PEM label cosign 2+ writes.
pub const SIGSTORE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label older cosign wrote; still read.
pub const COSIGN_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt cost cosign uses when it writes a key: N = 2^16, r = 8, p = 1.
const WRITE_LOG_N: u8 = 16;
/// Largest scrypt N we accept when reading (2^20 needs 1 GiB): a hostile file cannot make us
/// allocate without bound.
const MAX_LOG_N: u8 = 20;

#[derive(serde::Serialize, serde::Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The key password: `COSIGN_PASSWORD` when set (even empty, as cosign does), else `prompt`.
/// The binaries pass `std::env::var(COSIGN_PASSWORD_ENV).ok()` and a terminal prompt.
pub fn cosign_password(
    env_value: Option<String>,
    prompt: impl FnOnce() -> std::io::Result<String>,
) -> Result<Secret, Error> {
    match env_value {
        Some(value) => Ok(Secret::new(value)),
        None => prompt().map(Secret::new).map_err(|err| Error::Key {
            key: "cosign.key".to_owned(),
            message: format!(
                "cannot read the key password ({err})\n\nhint: set {COSIGN_PASSWORD_ENV}"
            ),
        }),
    }
}

impl EcdsaP256Key {
    /// Reads an encrypted `cosign.key`. `name` (usually the path) is used in errors.
    pub fn from_cosign_pem(
        name: &str,
        pem: &str,
        password: &Secret,
    ) -> Result<EcdsaP256Key, Error> {
        let fail = |message: String| Error::Key {
            key: name.to_owned(),
            message,
        };
        let (label, body) = pem_body(pem).ok_or_else(|| fail("not a PEM file\n\nhint: pass the `cosign.key` written by `cosign generate-key-pair`".to_owned()))?;
        if label != SIGSTORE_KEY_LABEL && label != COSIGN_KEY_LABEL {
            return Err(fail(format!(
                "PEM label `{label}` is not `{SIGSTORE_KEY_LABEL}` or `{COSIGN_KEY_LABEL}`"
            )));
        }
        let json = STANDARD
            .decode(body)
            .map_err(|err| fail(format!("the PEM body is not base64 ({err})")))?;
        let encrypted: EncryptedKey = serde_json::from_slice(&json).map_err(|err| {
            fail(format!(
                "the PEM body is not cosign's encrypted key JSON ({err})"
            ))
        })?;
        if encrypted.kdf.name != "scrypt" || encrypted.cipher.name != "nacl/secretbox" {
            return Err(fail(format!(
                "unsupported key encryption `{}` + `{}` (cosign uses scrypt + nacl/secretbox)",
                encrypted.kdf.name, encrypted.cipher.name
            )));
        }
        let params = &encrypted.kdf.params;
        let log_n = (params.n.is_power_of_two() && params.n > 1)
            .then(|| params.n.trailing_zeros())
            .and_then(|log_n| u8::try_from(log_n).ok());
        let log_n = log_n.filter(|log_n| *log_n <= MAX_LOG_N).ok_or_else(|| {
            fail(format!(
                "scrypt N = {} is not a power of two up to 2^{MAX_LOG_N}",
                params.n
            ))
        })?;
        let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, 32)
            .map_err(|err| fail(format!("invalid scrypt parameters ({err})")))?;
        let salt = STANDARD
            .decode(&encrypted.kdf.salt)
            .map_err(|_| fail("the salt is not base64".to_owned()))?;
        let nonce = STANDARD
            .decode(&encrypted.cipher.nonce)
            .map_err(|_| fail("the nonce is not base64".to_owned()))?;
        let ciphertext = STANDARD
            .decode(&encrypted.ciphertext)
            .map_err(|_| fail("the ciphertext is not base64".to_owned()))?;
        if nonce.len() != 24 {
            return Err(fail(format!(
                "the nonce is {} bytes, nacl/secretbox needs 24",
                nonce.len()
            )));
        }
        let mut secret_key = [0_u8; 32];
        scrypt::scrypt(
            password.expose().as_bytes(),
            &salt,
            &scrypt_params,
            &mut secret_key,
        )
        .map_err(|err| fail(format!("scrypt failed ({err})")))?;
        let der = XSalsa20Poly1305::new(Key::from_slice(&secret_key))
            .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
            .map_err(|_| fail(format!("wrong password, or the key file is corrupt (decryption failed)\n\nhint: set {COSIGN_PASSWORD_ENV} to the password given to `cosign generate-key-pair`")))?;
        let key = SigningKey::from_pkcs8_der(&der).map_err(|err| fail(format!("the decrypted key is not a PKCS#8 P-256 key ({err})\n\nhint: Slipway supports ECDSA P-256 keys, cosign's default")))?;
        Ok(EcdsaP256Key::from_signing_key(key))
    }

    /// Writes the key as an encrypted `cosign.key` (`ENCRYPTED SIGSTORE PRIVATE KEY`, cosign's
    /// scrypt cost), readable by cosign.
    pub fn to_cosign_pem(&self, password: &Secret) -> Result<String, Error> {
        let fail = |message: String| Error::Key {
            key: crate::Signer::key_id(self),
            message,
        };
        let der = self
            .signing_key()
            .to_pkcs8_der()
            .map_err(|err| fail(format!("cannot encode the key as PKCS#8 ({err})")))?;
        let mut salt = [0_u8; 32];
        let mut nonce = [0_u8; 24];
        rand_core::OsRng.fill_bytes(&mut salt);
        rand_core::OsRng.fill_bytes(&mut nonce);
        let params = scrypt::Params::new(WRITE_LOG_N, 8, 1, 32)
            .map_err(|err| fail(format!("invalid scrypt parameters ({err})")))?;
        let mut secret_key = [0_u8; 32];
        scrypt::scrypt(
            password.expose().as_bytes(),
            &salt,
            &params,
            &mut secret_key,
        )
        .map_err(|err| fail(format!("scrypt failed ({err})")))?;
        let ciphertext = XSalsa20Poly1305::new(Key::from_slice(&secret_key))
            .encrypt(Nonce::from_slice(&nonce), der.as_bytes())
            .map_err(|_| fail("encryption failed".to_owned()))?;
        let body = EncryptedKey {
            kdf: Kdf {
                name: "scrypt".to_owned(),
                params: KdfParams {
                    n: 1 << WRITE_LOG_N,
                    r: 8,
                    p: 1,
                },
                salt: STANDARD.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".to_owned(),
                nonce: STANDARD.encode(nonce),
            },
            ciphertext: STANDARD.encode(ciphertext),
        };
        let json = serde_json::to_vec(&body).map_err(|err| fail(err.to_string()))?;
        Ok(pem_encode(SIGSTORE_KEY_LABEL, &json))
    }
}

/// A key pair as `cosign generate-key-pair` writes it: (`cosign.key`, `cosign.pub`).
pub fn generate_key_pair(password: &Secret) -> Result<(EcdsaP256Key, String, String), Error> {
    let key = EcdsaP256Key::generate();
    let private = key.to_cosign_pem(password)?;
    let public = key.public().to_pem()?;
    Ok((key, private, public))
}

/// The label and base64 body of the first PEM block in `text`.
fn pem_body(text: &str) -> Option<(String, String)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_and_end = &rest[label_end + 5..];
    let end = body_and_end.find(&format!("-----END {label}-----"))?;
    let body: String = body_and_end[..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label, body))
}

fn pem_encode(label: &str, bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Signer as _, Verifier as _};

    #[test]
    fn round_trip_and_wrong_password() {
        let password = Secret::new("correct horse");
        let (key, private, public) = generate_key_pair(&password).expect("generate");
        assert!(
            private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
            "{private}"
        );
        assert!(private.lines().all(|line| line.len() <= 64));
        let loaded =
            EcdsaP256Key::from_cosign_pem("cosign.key", &private, &password).expect("load");
        assert_eq!(loaded.key_id(), key.key_id());
        let public = crate::EcdsaP256PublicKey::from_pem("cosign.pub", &public).expect("pub");
        assert!(public.verify(b"x", &loaded.sign(b"x").expect("sign")));
        let err = EcdsaP256Key::from_cosign_pem("cosign.key", &private, &Secret::new("wrong"))
            .expect_err("wrong password");
        assert!(
            err.to_string()
                .starts_with("key `cosign.key`: wrong password, or the key file is corrupt"),
            "{err}"
        );
        assert!(!format!("{err:?}").contains("correct horse"));
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let check = |pem: &str, expected: &str| {
            let err = EcdsaP256Key::from_cosign_pem("k", pem, &Secret::new("")).expect_err(pem);
            assert!(err.to_string().contains(expected), "{pem}: {err}");
        };
        check("nothing", "not a PEM file");
        check(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "PEM label `PUBLIC KEY`",
        );
        check(
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n!!\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "not base64",
        );
        let body = |json: &str| pem_encode(SIGSTORE_KEY_LABEL, json.as_bytes());
        check(&body("{}"), "not cosign's encrypted key JSON");
        let huge = r#"{"kdf":{"name":"scrypt","params":{"N":4294967296,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
        check(&body(huge), "is not a power of two up to 2^20");
        let other = r#"{"kdf":{"name":"argon2","params":{"N":2,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
        check(&body(other), "unsupported key encryption `argon2`");
    }

    #[test]
    fn password_prefers_the_environment() {
        let from_env =
            cosign_password(Some(String::new()), || panic!("must not prompt")).expect("env");
        assert_eq!(from_env.expose(), "");
        assert_eq!(
            cosign_password(None, || Ok("typed".to_owned()))
                .expect("prompt")
                .expose(),
            "typed"
        );
        let err =
            cosign_password(None, || Err(std::io::Error::other("no tty"))).expect_err("no tty");
        assert!(
            err.to_string().contains("hint: set COSIGN_PASSWORD"),
            "{err}"
        );
    }
}
