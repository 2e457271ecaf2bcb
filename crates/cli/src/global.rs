//! Flags every command shares, on all three binaries: which config, which cluster (the kubectl
//! way), which release, how to print, how much to log.
//!
//! Decisions:
//! - One struct, flattened into every subcommand (not clap's `global = true` on the top-level
//!   parser), so `slipway-deploy status --release …` and `slipway-deploy --help` stay as they
//!   were and each subcommand's `--help` lists every flag it accepts.
//! - The release can also be given as a positional `RELEASE` ([`ReleaseArg`]) on the commands
//!   that act on one release; giving both is an error. `GlobalArgs` itself has no positional, so
//!   a command with its own positional (an image) keeps it.
//! - `--kubeconfig`, `--context` and `-n/--namespace` override `kubernetes.kubeconfig`,
//!   `kubernetes.context` and the namespace of `release.name`, on every command, as kubectl's do.
//! - `-v`/`-q` and `RUST_LOG` choose the log level (`RUST_LOG` wins when set); logs go to
//!   stderr, never stdout (`logging.rs`).

use std::path::PathBuf;

/// How to print results on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// For machines: one JSON document.
    Json,
    /// For machines and people: the JSON document as YAML.
    Yaml,
}

/// How log lines look on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Flags shared by every command (flattened into each).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Config file (default: `slipway.toml` in the current directory, when present).
    #[arg(long, value_name = "PATH", env = "SLIPWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Ignore config files; use defaults, `SLIPWAY_*` env and flags only.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Kubeconfig file, as kubectl's `--kubeconfig` [kubernetes.kubeconfig].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<String>,
    /// Kubeconfig context, as kubectl's `--context` [kubernetes.context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the release, replacing the one in `release.name`.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// `namespace/deployment` [release.name]; also accepted as the positional RELEASE where a
    /// command acts on one release.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub release: Option<String>,
    /// Output format on stdout.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    /// More logs on stderr (`-v` debug, `-vv` trace); `RUST_LOG` overrides.
    #[arg(long, short = 'v', action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Logs only errors on stderr (the story lines stay); `RUST_LOG` overrides.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// No colours (also when `NO_COLOR` is set).
    #[arg(long)]
    pub no_color: bool,
}

/// The positional `RELEASE`, flattened next to [`GlobalArgs`] into the commands that act on
/// one release: `slipway-deploy status ml/iris` is `slipway-deploy status --release ml/iris`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReleaseArg {
    /// `namespace/deployment`, as `--release`.
    #[arg(value_name = "RELEASE", conflicts_with = "release")]
    pub release_positional: Option<String>,
}

impl GlobalArgs {
    /// `--release`, or the positional one.
    pub fn release_name<'a>(&'a self, positional: &'a ReleaseArg) -> Option<&'a String> {
        self.release
            .as_ref()
            .or(positional.release_positional.as_ref())
    }

    /// With the positional release moved into `--release`, so the rest reads one field.
    #[must_use]
    pub fn with_release(&self, positional: &ReleaseArg) -> GlobalArgs {
        let mut global = self.clone();
        global.release = self.release_name(positional).cloned();
        global
    }

    /// Config keys these flags set (merged last, over file and env).
    pub fn overrides(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut overrides = Vec::new();
        for (key, value) in [
            ("release.name", &self.release),
            ("kubernetes.kubeconfig", &self.kubeconfig),
            ("kubernetes.context", &self.context),
        ] {
            if let Some(value) = value {
                overrides.push((key, serde_json::Value::String(value.clone())));
            }
        }
        overrides
    }

    /// Whether colours are off: `--no-color` or `NO_COLOR` set to anything non-empty
    /// (no-color.org).
    pub fn no_color(&self) -> bool {
        self.no_color || std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
    }
}
