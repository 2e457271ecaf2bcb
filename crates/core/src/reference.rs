//! Image references per the OCI distribution reference grammar (the one docker, cosign and
//! containerd share):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component ( "/" path-component )*
//! domain         := host [ ":" port ]            host := dns-name | ipv4 | "[" ipv6 "]"
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalisation follows docker: with no domain the registry is `docker.io`, and a single-component
//! repository there gets `library/`. The first component counts as a domain when it contains `.`
//! or `:`, is `localhost` or has an uppercase letter (docker's rule). Uppercase is rejected in the repository path with a
//! hint, since registries reject it too and the mistake is common.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Longest repository name (domain + path) docker accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag the distribution spec accepts.
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why an image reference did not parse. Every variant carries the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The reference is empty.
    #[error("invalid image reference: it is empty\n\nhint: write e.g. `ghcr.io/acme/model-server:1.4.2`")]
    Empty,
    /// Uppercase letters in the repository path.
    #[error(
        "invalid image reference `{input}`: repository `{repository}` contains uppercase letters\n\nhint: repository names must be lowercase, e.g. `{lowercase}`"
    )]
    Uppercase {
        /// The text that was parsed.
        input: String,
        /// The repository path found.
        repository: String,
        /// The same path in lowercase.
        lowercase: String,
    },
    /// A path component breaks the grammar.
    #[error(
        "invalid image reference `{input}`: path component `{component}` is not valid\n\nhint: components are lowercase letters and digits, separated by `.`, `_`, `__` or dashes, and cannot be empty or start or end with a separator"
    )]
    BadComponent {
        /// The text that was parsed.
        input: String,
        /// The offending component.
        component: String,
    },
    /// The registry host or port is not valid.
    #[error("invalid image reference `{input}`: registry `{registry}` is not a valid host[:port] ({why})")]
    BadRegistry {
        /// The text that was parsed.
        input: String,
        /// The registry part.
        registry: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The tag breaks the grammar.
    #[error(
        "invalid image reference `{input}`: tag `{tag}` is not valid\n\nhint: tags are up to 128 characters of letters, digits, `_`, `.` and `-`, and cannot start with `.` or `-`"
    )]
    BadTag {
        /// The text that was parsed.
        input: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest part is not valid.
    #[error("invalid image reference `{input}`: {source}")]
    BadDigest {
        /// The text that was parsed.
        input: String,
        /// What is wrong with the digest.
        #[source]
        source: DigestError,
    },
    /// The name is too long.
    #[error("invalid image reference `{input}`: name is {len} characters, the limit is 255")]
    TooLong {
        /// The text that was parsed.
        input: String,
        /// Its name length.
        len: usize,
    },
}

impl ImageRef {
    /// Parses and normalises a reference.
    pub fn parse(input: &str) -> Result<ImageRef, ImageRefError> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let owned = || input.to_owned();
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest)
                    .map_err(|source| ImageRefError::BadDigest { input: owned(), source })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last `:` that comes after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |idx| idx + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(idx) => {
                let at = last_slash + idx;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ImageRefError::BadTag { input: owned(), tag: tag.to_owned() });
            }
        }
        if name.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ImageRefError::TooLong { input: owned(), len: name.len() });
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_owned(), path)
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name),
        };
        if registry != DEFAULT_REGISTRY {
            validate_registry(&registry).map_err(|why| ImageRefError::BadRegistry {
                input: owned(),
                registry: registry.clone(),
                why,
            })?;
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase {
                input: owned(),
                repository: path.to_owned(),
                lowercase: path.to_ascii_lowercase(),
            });
        }
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ImageRefError::BadComponent {
                    input: owned(),
                    component: component.to_owned(),
                });
            }
        }
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_owned(),
            _ => registry,
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(ImageRef { registry, repository, tag: tag.map(str::to_owned), digest })
    }

    /// Registry host, with port when one was given (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path inside the registry (`library/nginx`, `acme/models/iris`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given. No `latest` is implied here: callers decide.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, with neither tag nor digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image pinned to `digest`, keeping the tag for people to read.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef { digest: Some(digest), ..self.clone() }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ImageRefError> {
        if !valid_tag(tag) {
            return Err(ImageRefError::BadTag { input: self.to_string(), tag: tag.to_owned() });
        }
        Ok(ImageRef { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }

    /// `registry/repository@digest`, the form to deploy: `None` when not pinned.
    pub fn pinned(&self) -> Option<String> {
        self.digest.as_ref().map(|digest| format!("{}@{digest}", self.name()))
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else { return false };
    tag.len() <= MAX_TAG_LEN
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut idx = 0;
    while idx < bytes.len() {
        if is_alnum(bytes[idx]) {
            idx += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = idx;
        while idx < bytes.len() && !is_alnum(bytes[idx]) {
            idx += 1;
        }
        let separator = &component[start..idx];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_registry(registry: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((ipv6, after)) = rest.split_once(']') else {
            return Err("unclosed `[` in IPv6 address");
        };
        if ipv6.is_empty() || !ipv6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err("bad IPv6 address");
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err("unexpected text after `]`"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("port must be 1-5 digits");
        }
        if port.parse::<u32>().map_or(true, |p| p == 0 || p > 65535) {
            return Err("port must be between 1 and 65535");
        }
    }
    if let Some(host) = host {
        if host.is_empty() {
            return Err("empty host");
        }
        for label in host.split('.') {
            let bytes = label.as_bytes();
            let ok = !bytes.is_empty()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-';
            if !ok {
                return Err("host labels are letters, digits and inner dashes");
            }
        }
    }
    Ok(())
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ImageRef::parse(&text).map_err(serde::de::Error::custom)
    }
}
