//! A string that must never be shown: registry tokens, key passwords, admin tokens, MLflow tokens.
//!
//! `Debug`, `Display` and `Serialize` all print a fixed marker, so a secret that reaches a log
//! line, an error, a report or a snapshot by accident shows `<redacted>` and nothing else.
//! The value is reachable only through [`Secret::expose`], which is easy to grep for.

use std::fmt;

/// The text printed in place of any secret.
const REDACTED: &str = "<redacted>";

/// A secret string. See the module docs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Call only where it goes to the system that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_its_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "<redacted> <redacted>");
        assert_eq!(
            serde_json::to_string(&secret).expect("serialize"),
            "\"<redacted>\""
        );
        assert_eq!(secret.expose(), "hunter2");
    }
}
