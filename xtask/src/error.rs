//! A minimal `anyhow`-like error: a message plus the context chain, outermost first.
//!
//! xtask has no dependencies on purpose (see `Cargo.toml`): this is the part of anyhow we
//! use, in forty lines, and it keeps xtask out of the shared `Cargo.lock` churn.

use std::fmt;

/// An error as a chain of messages, printed outermost first and joined by `: `.
pub(crate) struct Error {
    chain: Vec<String>,
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn msg(message: impl fmt::Display) -> Self {
        Self {
            chain: vec![message.to_string()],
        }
    }

    fn context(mut self, context: impl fmt::Display) -> Self {
        self.chain.insert(0, context.to_string());
        self
    }
}

/// Like anyhow, any std error converts, keeping its `source()` chain. `Error` itself does
/// not implement `std::error::Error`, which is what lets this blanket impl exist.
impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        let mut chain = vec![err.to_string()];
        let mut source = err.source();
        while let Some(inner) = source {
            chain.push(inner.to_string());
            source = inner.source();
        }
        Self { chain }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain.join(": "))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `.context(..)` and `.with_context(|| ..)` on results and options.
pub(crate) trait Context<T> {
    fn context(self, context: impl fmt::Display) -> Result<T>;
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|err| err.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|err| err.into().context(context()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error::msg(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::msg(context()))
    }
}

/// Returns early with an [`Error`] built from a format string.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::msg(format!($($arg)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::{Context as _, Error, Result};

    #[test]
    fn context_is_printed_outermost_first() {
        let io: Result<(), std::io::Error> = Err(std::io::Error::other("disk on fire"));
        let err = io
            .context("failed to write `x`")
            .context("ci step `fmt` failed");
        assert_eq!(
            err.map_err(|err| err.to_string()),
            Err("ci step `fmt` failed: failed to write `x`: disk on fire".to_owned())
        );
        let none: Option<u8> = None;
        assert_eq!(
            none.with_context(|| format!("no {}", "port"))
                .map_err(|err| err.to_string()),
            Err("no port".to_owned())
        );
        assert_eq!(Error::msg("plain").to_string(), "plain");
    }
}
