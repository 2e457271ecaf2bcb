//! Printing a document on stdout as `--output text|json|yaml` says, with its `schema_version`.
//!
//! Every JSON (and YAML) document a command prints is an object whose first field is
//! `schema_version` ([`SCHEMA_VERSION`]); `slipway-deploy schema NAME` prints the JSON Schema
//! of each published document, generated from the same types ([`Versioned`]). The version
//! changes only when a field is removed or changes meaning; added fields keep it (readers ignore
//! unknown fields, as `ReleaseRecord` readers do).

use std::io::Write as _;

use anyhow::Context as _;
use serde::Serialize;

use crate::OutputFormat;

/// The version of every printed document's format.
pub const SCHEMA_VERSION: u32 = 2;

/// A printed document: `schema_version`, then the document's own fields.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Versioned<T> {
    /// The format's version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The document.
    #[serde(flatten)]
    pub document: T,
}

impl<T> Versioned<T> {
    /// `document` at the current version.
    pub fn new(document: T) -> Versioned<T> {
        Versioned {
            schema_version: SCHEMA_VERSION,
            document,
        }
    }
}

/// `document` as JSON (pretty) or YAML with its `schema_version`; `None` for text.
pub fn render<T: Serialize>(format: OutputFormat, document: &T) -> anyhow::Result<Option<String>> {
    let versioned = Versioned::new(document);
    Ok(match format {
        OutputFormat::Text => None,
        OutputFormat::Json => Some(format!(
            "{}\n",
            serde_json::to_string_pretty(&versioned).context("encoding the document as JSON")?
        )),
        OutputFormat::Yaml => {
            Some(serde_yaml_ng::to_string(&versioned).context("encoding the document as YAML")?)
        }
    })
}

/// Prints `document` on stdout: `text()` for text, else [`render`].
pub fn print<T: Serialize>(
    format: OutputFormat,
    document: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let rendered = match render(format, document)? {
        Some(rendered) => rendered,
        None => text(),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(rendered.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

/// Prints `document` as is (no `schema_version`: a JSON Schema, say): YAML with
/// `--output yaml`, else pretty JSON.
pub fn print_raw<T: Serialize>(format: OutputFormat, document: &T) -> anyhow::Result<()> {
    let rendered = match format {
        OutputFormat::Yaml => {
            serde_yaml_ng::to_string(document).context("encoding the document as YAML")?
        }
        OutputFormat::Text | OutputFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(document).context("encoding the document as JSON")?
        ),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(rendered.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}
