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
//! Normalisation follows docker: with no domain the registry is `docker.io` (`index.docker.io` is
//! an alias for it), and a single-component repository there gets `library/`. The first component
//! counts as a domain when it contains `.` or `:`, is `localhost` or has an uppercase letter
//! (docker's rule, so `Acme/app` is repository `app` on registry `Acme`). Uppercase is rejected in
//! the repository path with a hint, since registries reject it too and the mistake is common.
//!
//! As in docker, the 255-character limit applies to the normalised name (`docker.io/library/x`),
//! and a bare 64-hex string is refused because it reads as an image ID. Slipway is stricter than
//! docker in two places: ports must be 1-65535, and digests must use an algorithm [`Digest`] knows.

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
    #[error(
        "invalid image reference: it is empty\n\nhint: write e.g. `ghcr.io/acme/model-server:1.4.2`"
    )]
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
    #[error(
        "invalid image reference `{input}`: registry `{registry}` is not a valid host[:port] ({why})"
    )]
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
    /// The whole reference is 64 hex characters: docker reads that as an image ID, not a name.
    #[error(
        "invalid image reference `{input}`: 64 hex characters is an image ID, not a repository name\n\nhint: to pin by digest write `repository@sha256:{input}`"
    )]
    ImageId {
        /// The text that was parsed.
        input: String,
    },
    /// The normalised name (`registry/repository`) is too long.
    #[error(
        "invalid image reference `{input}`: name is {len} characters once normalised, the limit is 255"
    )]
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
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ImageRefError::ImageId { input: owned() });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|source| ImageRefError::BadDigest {
                    input: owned(),
                    source,
                })?;
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
        if let Some(tag) = tag.filter(|tag| !valid_tag(tag)) {
            return Err(ImageRefError::BadTag {
                input: owned(),
                tag: tag.to_owned(),
            });
        }
        if name.is_empty() {
            return Err(ImageRefError::Empty);
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
            "index.docker.io" => DEFAULT_REGISTRY.to_owned(),
            _ => registry,
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        // Docker measures the normalised name, so `docker.io/library/` counts: checking the input
        // would accept names whose own Display no longer parses.
        let len = registry.len() + 1 + repository.len();
        if len > MAX_NAME_LEN {
            return Err(ImageRefError::TooLong {
                input: owned(),
                len,
            });
        }
        Ok(ImageRef {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
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
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ImageRefError> {
        if !valid_tag(tag) {
            return Err(ImageRefError::BadTag {
                input: self.to_string(),
                tag: tag.to_owned(),
            });
        }
        Ok(ImageRef {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// `registry/repository@digest`, the form to deploy: `None` when not pinned.
    pub fn pinned(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|digest| format!("{}@{digest}", self.name()))
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return false;
    };
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
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX64: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// `expect` is the Display of the parsed reference, or a fragment of the error text.
    #[track_caller]
    fn check(input: &str, expect: Result<&str, &str>) {
        match (ImageRef::parse(input), expect) {
            (Ok(parsed), Ok(display)) => {
                assert_eq!(parsed.to_string(), display, "display of {input:?}");
                let again = ImageRef::parse(display).expect("display reparses");
                assert_eq!(again, parsed, "display of {input:?} does not round-trip");
            }
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
    fn normalisation() {
        check("nginx", Ok("docker.io/library/nginx"));
        check("nginx:1.25", Ok("docker.io/library/nginx:1.25"));
        check("library/nginx", Ok("docker.io/library/nginx"));
        check("docker.io/nginx", Ok("docker.io/library/nginx"));
        check(
            "docker.io/library/nginx:latest",
            Ok("docker.io/library/nginx:latest"),
        );
        check("acme/app", Ok("docker.io/acme/app"));
        check("index.docker.io/acme/app", Ok("docker.io/acme/app"));
        check("index.docker.io/nginx", Ok("docker.io/library/nginx"));
        // Only `index.docker.io` is docker's alias; other hosts keep their name and get no `library/`.
        check(
            "registry-1.docker.io/acme/app",
            Ok("registry-1.docker.io/acme/app"),
        );
        check("ghcr.io/app", Ok("ghcr.io/app"));
        // A single name is never a registry: `localhost:5000` alone is image `localhost`, tag `5000`.
        check("localhost", Ok("docker.io/library/localhost"));
        check("localhost:5000", Ok("docker.io/library/localhost:5000"));
        check("registry.io:5000", Ok("docker.io/library/registry.io:5000"));
        // Docker counts a first component with uppercase as a domain, so this is repository `app`
        // on a registry called `Acme`, not an uppercase error.
        check("Acme/app", Ok("Acme/app"));
        check("Docker.IO/nginx", Ok("Docker.IO/nginx"));
    }

    #[test]
    fn registries() {
        check("localhost/app", Ok("localhost/app"));
        check("localhost:5000/app:tag", Ok("localhost:5000/app:tag"));
        check("127.0.0.1:5000/a/b/c:v1", Ok("127.0.0.1:5000/a/b/c:v1"));
        check("[::1]:5000/app", Ok("[::1]:5000/app"));
        check("[::1]/app", Ok("[::1]/app"));
        check("[fe80::1:AB]:443/app", Ok("[fe80::1:AB]:443/app"));
        check(
            "my-registry.example.com:65535/app",
            Ok("my-registry.example.com:65535/app"),
        );
        check("host:99999/app", Err("port must be between 1 and 65535"));
        check("localhost:0/app", Err("port must be between 1 and 65535"));
        // `host:abc` has a `:` so it is the domain, and its port is not a number (docker: invalid
        // reference format; it cannot be a tag either since tags have no `/`).
        check("host:abc/app", Err("port must be 1-5 digits"));
        check("host:/app", Err("port must be 1-5 digits"));
        check("host:123456/app", Err("port must be 1-5 digits"));
        check(
            "host_name.io/app",
            Err("host labels are letters, digits and inner dashes"),
        );
        check("-host.io/app", Err("host labels"));
        check("host-.io/app", Err("host labels"));
        check(".io/app", Err("host labels"));
        check(":5000/app", Err("empty host"));
        check("[::1/app", Err("unclosed `[`"));
        check("[::1]x/app", Err("unexpected text after `]`"));
        check("[fe80::1%eth0]:5000/app", Err("bad IPv6 address"));
        check("[]:5000/app", Err("bad IPv6 address"));
    }

    #[test]
    fn paths_and_separators() {
        check("acme/team/sub/app", Ok("docker.io/acme/team/sub/app"));
        check("ghcr.io/acme/models/iris", Ok("ghcr.io/acme/models/iris"));
        check("a__b", Ok("docker.io/library/a__b"));
        check("a-b", Ok("docker.io/library/a-b"));
        check("a--b", Ok("docker.io/library/a--b"));
        check("a---b-c", Ok("docker.io/library/a---b-c"));
        check("a.b", Ok("docker.io/library/a.b"));
        check("a_b", Ok("docker.io/library/a_b"));
        check("acme/a.b_c__d-e/0", Ok("docker.io/acme/a.b_c__d-e/0"));
        // With a `.` the first component is a domain, as in docker, so `_` there is refused.
        check(
            "a.b_c/app",
            Err("registry `a.b_c` is not a valid host[:port]"),
        );
        check(
            "docker.io/Acme/app",
            Err("repository `Acme/app` contains uppercase letters"),
        );
        check(
            "docker.io/Acme/app",
            Err("hint: repository names must be lowercase, e.g. `acme/app`"),
        );
        check("acme/App", Err("contains uppercase letters"));
        check("NGINX", Err("contains uppercase letters"));
        check("app/", Err("path component `` is not valid"));
        check("/app", Err("path component `` is not valid"));
        check("a//b", Err("path component `` is not valid"));
        check("-app", Err("path component `-app` is not valid"));
        check("app-", Err("path component `app-` is not valid"));
        check("a_-b", Err("path component `a_-b` is not valid"));
        check("a___b", Err("path component `a___b` is not valid"));
        check("a..b", Err("path component `a..b` is not valid"));
        check("a._b", Err("path component `a._b` is not valid"));
        check("_app", Err("path component `_app`"));
        check("café", Err("path component `café`"));
        check(" nginx", Err("path component ` nginx`"));
        check("nginx ", Err("path component `nginx `"));
        check("ng inx", Err("path component `ng inx`"));
        check("app:tag:more", Err("path component `app:tag`"));
        check("a/b:c/d", Err("path component `b:c`"));
    }

    #[test]
    fn tags_and_digests() {
        let digest = format!("sha256:{HEX64}");
        let full = format!("ghcr.io/acme/models/iris:1.4.2@{digest}");
        check(&full, Ok(&full));
        check(
            &format!("nginx@{digest}"),
            Ok(&format!("docker.io/library/nginx@{digest}")),
        );
        check(
            &format!("localhost:5000/app@{digest}"),
            Ok(&format!("localhost:5000/app@{digest}")),
        );
        check("app:V1_rc-2.x", Ok("docker.io/library/app:V1_rc-2.x"));
        check("app:_x", Ok("docker.io/library/app:_x"));
        let tag128 = "t".repeat(128);
        check(
            &format!("app:{tag128}"),
            Ok(&format!("docker.io/library/app:{tag128}")),
        );
        check(&format!("app:{tag128}x"), Err("is not valid"));
        check("app:", Err("tag `` is not valid"));
        check("app:.x", Err("tag `.x` is not valid"));
        check("app:-x", Err("tag `-x` is not valid"));
        // `app:a` before a `/` is a domain with a bad port, not a name with a tag.
        check(
            "app:a/b",
            Err("registry `app:a` is not a valid host[:port]"),
        );
        check("app:1 0", Err("tag `1 0` is not valid"));
        check("app:1\n", Err("tag `1\n` is not valid"));
        check("app@sha256:short", Err("invalid digest `sha256:short`"));
        check("app@sha256:abc", Err("needs 64 hex characters, found 3"));
        check(
            &format!("app@md5:{HEX64}"),
            Err("unsupported algorithm `md5`"),
        );
        check(
            &format!("app@sha256:{}", HEX64.to_uppercase()),
            Err("not lowercase hex"),
        );
        check("app@", Err("expected `algorithm:hex`"));
        check("a@b@c", Err("expected `algorithm:hex`"));
        check(
            &format!("app@{digest}@{digest}"),
            Err("invalid image reference"),
        );
        check(&format!("app@{digest}:tag"), Err("invalid image reference"));
    }

    #[test]
    fn empty_too_long_and_image_ids() {
        check("", Err("it is empty"));
        check(":tag", Err("it is empty"));
        check(&format!("@sha256:{HEX64}"), Err("it is empty"));
        check(":", Err("tag `` is not valid"));
        // 255 is the limit for `registry/repository` after normalisation, as in docker.
        let path245 = format!("acme/{}", "a".repeat(240));
        check(
            &format!("docker.io/{path245}"),
            Ok(&format!("docker.io/{path245}")),
        );
        check(
            &format!("docker.io/{path245}b"),
            Err("name is 256 characters"),
        );
        // `index.docker.io/` is longer than the `docker.io/` it becomes.
        let path240 = format!("acme/{}", "a".repeat(240));
        check(
            &format!("index.docker.io/{path240}"),
            Ok(&format!("docker.io/{path240}")),
        );
        // A 250-character bare name is 268 once `docker.io/library/` is added: refused, otherwise
        // its own Display would not parse.
        check(
            &"a".repeat(250),
            Err("name is 268 characters once normalised"),
        );
        check(&format!("{}:v1", "a".repeat(250)), Err("the limit is 255"));
        // Docker reads a bare 64-hex string as an image ID; with a tag it is a name again.
        check(HEX64, Err("64 hex characters is an image ID"));
        check(
            &format!("{HEX64}:v1"),
            Ok(&format!("docker.io/library/{HEX64}:v1")),
        );
        check(
            &format!("acme/{HEX64}"),
            Ok(&format!("docker.io/acme/{HEX64}")),
        );
    }

    #[test]
    fn accessors() {
        let nginx = ImageRef::parse("nginx").expect("valid");
        assert_eq!(nginx.registry(), "docker.io");
        assert_eq!(nginx.repository(), "library/nginx");
        assert_eq!(nginx.tag(), None);
        assert_eq!(nginx.digest(), None);
        assert_eq!(nginx.name(), "docker.io/library/nginx");
        assert_eq!(nginx.pinned(), None);

        let full = format!("ghcr.io/acme/models/iris:1.4.2@sha256:{HEX64}");
        let iris = ImageRef::parse(&full).expect("valid");
        assert_eq!(iris.registry(), "ghcr.io");
        assert_eq!(iris.repository(), "acme/models/iris");
        assert_eq!(iris.tag(), Some("1.4.2"));
        assert_eq!(iris.digest().map(Digest::hex), Some(HEX64));
        assert_eq!(
            iris.pinned(),
            Some(format!("ghcr.io/acme/models/iris@sha256:{HEX64}"))
        );

        let local = ImageRef::parse("localhost:5000/app:tag").expect("valid");
        assert_eq!(local.registry(), "localhost:5000");
        assert_eq!(local.repository(), "app");
        assert_eq!(local.tag(), Some("tag"));

        let ipv6 = ImageRef::parse("[::1]:5000/a/b").expect("valid");
        assert_eq!(ipv6.registry(), "[::1]:5000");
        assert_eq!(ipv6.repository(), "a/b");

        let acme = ImageRef::parse("Acme/app").expect("valid");
        assert_eq!(acme.registry(), "Acme");
        assert_eq!(acme.repository(), "app");

        let pinned = nginx.with_digest(iris.digest().expect("has digest").clone());
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/nginx@sha256:{HEX64}")
        );
        let retagged = pinned.with_tag("1.25").expect("valid tag");
        assert_eq!(retagged.to_string(), "docker.io/library/nginx:1.25");
        assert!(pinned.with_tag("-bad").is_err());
    }

    #[test]
    fn serde_round_trip() {
        let image = ImageRef::parse("acme/app:v1").expect("valid");
        let json = serde_json::to_string(&image).expect("serialises");
        assert_eq!(json, "\"docker.io/acme/app:v1\"");
        let back: ImageRef = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, image);
        assert!(serde_json::from_str::<ImageRef>("\"Acme/App\"").is_err());
    }

    // ---- property tests -------------------------------------------------------------------------

    /// `[a-z0-9]+ ( sep [a-z0-9]+ )*` with short runs, so names stay well under 255.
    fn component() -> impl Strategy<Value = String> {
        let separator = prop::sample::select(vec![".", "_", "__", "-", "--", "---"]);
        (
            "[a-z0-9]{1,6}",
            prop::collection::vec((separator, "[a-z0-9]{1,6}"), 0..3),
        )
            .prop_map(|(head, tail)| {
                let mut out = head;
                for (sep, alnum) in tail {
                    out.push_str(sep);
                    out.push_str(&alnum);
                }
                out
            })
    }

    /// Registries that docker recognises as a domain: they contain `.` or `:`, or are `localhost`.
    fn registry() -> impl Strategy<Value = String> {
        let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";
        let port = (1u32..=65535).prop_map(|p| format!(":{p}"));
        prop_oneof![
            (
                prop::collection::vec(label, 2..4),
                prop::option::of(port.clone())
            )
                .prop_map(|(labels, port)| format!(
                    "{}{}",
                    labels.join("."),
                    port.unwrap_or_default()
                )),
            (label, port.clone()).prop_map(|(host, port)| format!("{host}{port}")),
            prop::option::of(port.clone())
                .prop_map(|port| format!("localhost{}", port.unwrap_or_default())),
            (any::<[u8; 4]>(), port.clone())
                .prop_map(|(ip, port)| format!("{}.{}.{}.{}{port}", ip[0], ip[1], ip[2], ip[3])),
            // With no `:` (`[0]`) docker does not take it as a domain, so neither do we.
            (
                "[0-9a-fA-F]{0,4}:[0-9a-fA-F:]{0,16}",
                prop::option::of(port)
            )
                .prop_map(|(ip, port)| format!("[{ip}]{}", port.unwrap_or_default())),
            Just("index.docker.io".to_owned()),
            Just("docker.io".to_owned()),
        ]
    }

    #[derive(Debug, Clone)]
    struct Parts {
        registry: Option<String>,
        path: Vec<String>,
        tag: Option<String>,
        digest: Option<String>,
    }

    impl Parts {
        fn text(&self) -> String {
            let mut out = String::new();
            if let Some(registry) = &self.registry {
                out.push_str(registry);
                out.push('/');
            }
            out.push_str(&self.path.join("/"));
            if let Some(tag) = &self.tag {
                out.push(':');
                out.push_str(tag);
            }
            if let Some(digest) = &self.digest {
                out.push('@');
                out.push_str(digest);
            }
            out
        }
    }

    fn valid_parts() -> impl Strategy<Value = Parts> {
        (
            prop::option::of(registry()),
            prop::collection::vec(component(), 1..5),
            prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
            prop::option::of(prop_oneof![
                "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}")),
                "[0-9a-f]{128}".prop_map(|hex| format!("sha512:{hex}")),
            ]),
        )
            .prop_map(|(registry, mut path, tag, digest)| {
                // Without a registry a first component with `.` would be read as a domain.
                if registry.is_none() && path.len() > 1 {
                    path[0] = path[0].replace('.', "_");
                }
                Parts {
                    registry,
                    path,
                    tag,
                    digest,
                }
            })
    }

    /// Characters of the reference grammar, plus a few that must be refused.
    const ALPHABET: &str = "aAzZ09._:/@-[]_ é";

    /// A valid reference with one character replaced, inserted or removed: near misses reach the
    /// deep branches that random strings seldom do.
    fn mutated() -> impl Strategy<Value = String> {
        (
            valid_parts(),
            any::<prop::sample::Index>(),
            0..ALPHABET.chars().count(),
            0..3u8,
        )
            .prop_map(|(parts, at, pick, op)| {
                let mut chars: Vec<char> = parts.text().chars().collect();
                let at = at.index(chars.len() + 1);
                let c = ALPHABET.chars().nth(pick).unwrap_or('a');
                match op {
                    0 if at < chars.len() => chars[at] = c,
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at, c),
                }
                chars.into_iter().collect()
            })
    }

    /// Parsing never panics, and whatever parses prints to a fixed point that parses back equal.
    fn assert_round_trip(input: &str) -> Result<(), TestCaseError> {
        if let Ok(parsed) = ImageRef::parse(input) {
            let display = parsed.to_string();
            let again = ImageRef::parse(&display)
                .map_err(|err| TestCaseError::fail(format!("{input:?} -> {display:?}: {err}")))?;
            prop_assert_eq!(&again, &parsed, "{:?} -> {:?}", input, display);
            prop_assert_eq!(again.to_string(), display);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_unicode_never_panics(input in ".{0,300}") {
            assert_round_trip(&input)?;
        }

        #[test]
        fn grammar_alphabet_never_panics(input in "[a-zA-Z0-9._:/@\\[\\]-]{0,80}") {
            assert_round_trip(&input)?;
        }

        #[test]
        fn near_misses_round_trip(input in mutated()) {
            assert_round_trip(&input)?;
        }

        #[test]
        fn grammar_references_parse(parts in valid_parts()) {
            let text = parts.text();
            let parsed = ImageRef::parse(&text)
                .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
            let registry = match parts.registry.as_deref() {
                None | Some("index.docker.io") => DEFAULT_REGISTRY,
                Some(registry) => registry,
            };
            prop_assert_eq!(parsed.registry(), registry);
            let path = parts.path.join("/");
            if registry == DEFAULT_REGISTRY && parts.path.len() == 1 {
                prop_assert_eq!(parsed.repository(), format!("library/{path}"));
            } else {
                prop_assert_eq!(parsed.repository(), path);
            }
            prop_assert_eq!(parsed.tag(), parts.tag.as_deref());
            prop_assert_eq!(parsed.digest().map(Digest::to_string), parts.digest);
            assert_round_trip(&text)?;
        }
    }
}
