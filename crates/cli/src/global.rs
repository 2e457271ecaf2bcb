//! Flags every command shares.

use std::path::PathBuf;

/// How to print results on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// For machines: one JSON document.
    Json,
}

/// Flags shared by every command (flattened into each).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Config file (default: `slipway.toml` in the current directory, when present).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Ignore config files; use defaults, `SLIPWAY_*` env and flags only.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}
