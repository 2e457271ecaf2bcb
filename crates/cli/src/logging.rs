//! Logs: `tracing` events to stderr through `tracing-subscriber`, never stdout (stdout is data).
//!
//! - Level: `RUST_LOG` when set (the `EnvFilter` syntax); else `-q` errors only, default
//!   warnings, `-v` debug for Slipway and its HTTP clients (kube, reqwest, oci-client) with the
//!   rest at info, `-vv` debug everywhere. Trace only through `RUST_LOG`: some transport
//!   crates dump frames at trace.
//! - `log` records (reqwest's) are forwarded into the same subscriber.
//! - `--log-format json`: one JSON object per line; colours off with `--no-color`/`NO_COLOR`
//!   or when stderr is not a terminal.
//! - Secrets: every secret is a `slipway_core::Secret`, whose `Debug`/`Display` print
//!   `<redacted>`; request logs name method and URL, never headers (the planted-secrets test
//!   runs with `-v` and `RUST_LOG=debug`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::{GlobalArgs, LogFormat};

/// The filter for these flags when `RUST_LOG` is unset.
pub fn default_filter(global: &GlobalArgs) -> &'static str {
    if global.quiet {
        return "error";
    }
    match global.verbose {
        0 => "warn",
        1 => "info,slipway=debug,kube=debug,kube_client=debug,reqwest=debug,oci_client=debug",
        _ => "debug",
    }
}

/// Installs the subscriber once per process; later calls do nothing.
pub fn init(global: &GlobalArgs) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::new(value),
        _ => EnvFilter::new(default_filter(global)),
    };
    let ansi = !global.no_color() && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // An error means a subscriber is installed already (a second command in one process).
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
