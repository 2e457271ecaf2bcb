//! Plumbing shared by the three binaries: configuration layering, global flags, output format
//! and exit codes.
//!
//! Key design decision: only this crate and the binaries know about figment, clap and anyhow
//! (ARCHITECTURE.md invariant). Libraries receive typed, validated structs.

pub mod approvals;
pub mod backends;
pub mod config;
pub mod demo;
mod exit;
pub mod github;
mod global;
pub mod logging;
pub mod meta;
pub mod output;
pub mod release;
pub mod signals;
pub mod story;

pub use exit::{ExitStatus, Failure, UserError};
pub use global::{GlobalArgs, LogFormat, OutputFormat, ReleaseArg};
