//! Content digests (`algorithm:hex`), as the OCI image spec defines them.
//!
//! Only the registered algorithms are accepted (sha256, sha384, sha512): an unknown algorithm in a
//! release tool is far more likely a typo than a registry that speaks it.

use std::fmt;
use std::str::FromStr;

/// A digest algorithm registered by the OCI image spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256, 64 hex characters.
    Sha256,
    /// SHA-384, 96 hex characters.
    Sha384,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name as written in a digest.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// How many hex characters the encoded part must have.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha384 => 96,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

/// A content digest such as `sha256:9f86d0…`: algorithm plus lowercase hex of the right length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// Why a digest did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `:` between algorithm and hex.
    #[error(
        "invalid digest `{input}`: expected `algorithm:hex` such as `sha256:<64 hex characters>`"
    )]
    MissingSeparator {
        /// The text that was parsed.
        input: String,
    },
    /// The algorithm is not one the OCI spec registers.
    #[error(
        "invalid digest `{input}`: unsupported algorithm `{algorithm}` (supported: sha256, sha384, sha512)"
    )]
    UnsupportedAlgorithm {
        /// The text that was parsed.
        input: String,
        /// The algorithm found.
        algorithm: String,
    },
    /// The hex part has the wrong length for the algorithm.
    #[error("invalid digest `{input}`: {algorithm} needs {expected} hex characters, found {found}")]
    WrongLength {
        /// The text that was parsed.
        input: String,
        /// The algorithm.
        algorithm: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// The hex part has a character that is not lowercase hex.
    #[error(
        "invalid digest `{input}`: character `{character}` at offset {offset} is not lowercase hex"
    )]
    NotHex {
        /// The text that was parsed.
        input: String,
        /// The offending character.
        character: char,
        /// Its byte offset in `input`.
        offset: usize,
    },
}

impl Digest {
    /// Parses `algorithm:hex`.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::MissingSeparator {
                input: input.to_owned(),
            });
        };
        let algorithm = match algorithm {
            "sha256" => DigestAlgorithm::Sha256,
            "sha384" => DigestAlgorithm::Sha384,
            "sha512" => DigestAlgorithm::Sha512,
            other => {
                return Err(DigestError::UnsupportedAlgorithm {
                    input: input.to_owned(),
                    algorithm: other.to_owned(),
                });
            }
        };
        let offset_of_hex = input.len() - hex.len();
        if let Some((idx, character)) = hex
            .char_indices()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(DigestError::NotHex {
                input: input.to_owned(),
                character,
                offset: offset_of_hex + idx,
            });
        }
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::WrongLength {
                input: input.to_owned(),
                algorithm: algorithm.as_str(),
                expected: algorithm.hex_len(),
                found: hex.len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// Builds a sha256 digest from raw hash bytes.
    pub fn sha256_from_bytes(hash: &[u8; 32]) -> Digest {
        let mut hex = String::with_capacity(64);
        for byte in hash {
            hex.push_str(&format!("{byte:02x}"));
        }
        Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The tag cosign uses for artifacts attached to this digest: `sha256-<hex>.<suffix>`
    /// (suffix `sig`, `att` or `sbom`).
    pub fn cosign_tag(&self, suffix: &str) -> String {
        format!("{}-{}.{}", self.algorithm.as_str(), self.hex, suffix)
    }

    /// A short form for people: `sha256:` and the first 12 hex characters.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), &self.hex[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX64: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[track_caller]
    fn check(input: &str, expect: Result<&str, &str>) {
        match (Digest::parse(input), expect) {
            (Ok(digest), Ok(display)) => assert_eq!(digest.to_string(), display),
            (Err(err), Err(fragment)) => {
                let text = err.to_string();
                assert!(
                    text.contains(fragment),
                    "`{text}` should contain `{fragment}`"
                );
            }
            (got, want) => panic!("parse({input:?}) = {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn digests() {
        let ok = format!("sha256:{HEX64}");
        check(&ok, Ok(&ok));
        check(HEX64, Err("expected `algorithm:hex`"));
        check(&format!("md5:{HEX64}"), Err("unsupported algorithm `md5`"));
        check("sha256:abc", Err("needs 64 hex characters, found 3"));
        check(
            &format!("sha256:{}", HEX64.to_uppercase()),
            Err("not lowercase hex"),
        );
        check(
            &format!("sha256:{}g", &HEX64[..63]),
            Err("character `g` at offset 70"),
        );
        check(
            &format!("sha512:{HEX64}{HEX64}"),
            Ok(&format!("sha512:{HEX64}{HEX64}")),
        );
        check(&format!("sha384:{HEX64}"), Err("needs 96"));
    }

    #[test]
    fn cosign_tag_and_short() {
        let digest = Digest::parse(&format!("sha256:{HEX64}")).expect("valid");
        assert_eq!(digest.cosign_tag("sig"), format!("sha256-{HEX64}.sig"));
        assert_eq!(digest.short(), "sha256:9f86d081884c");
    }
}
