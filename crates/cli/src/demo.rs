//! Real by default: which world a command runs in, `--demo [SCENARIO] [--state DIR]` or the
//! configured backends, and the rule that keeps a simulated part from passing for a real one.
//!
//! - Without `--demo`, every boundary (models, registry, cluster, metrics, scanner) must be
//!   configured real in `[backend]`, or listed in `backend.simulated` on purpose; otherwise the
//!   command exits 2 naming what is missing, before anything is contacted.
//! - With `--demo`, every boundary is the embedded world; a configuration naming real backends
//!   is refused too, so `--demo` never touches a real system.
//! - Rejected: a silent in-memory default (what Slipway did before), because a typo in
//!   `[backend]` or a missing `slipway.toml` then "released" into a simulation with exit 0.

use std::path::{Path, PathBuf};

use crate::config::{self, Boundary, Settings};
use crate::{GlobalArgs, UserError};

/// `--demo [SCENARIO]` and `--state DIR`, flattened into every command that touches a release.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DemoArgs {
    /// Run on the embedded demo world instead of real backends, in SCENARIO (default `happy`,
    /// or the one a `--state` directory holds; `slipway-deploy run --list-scenarios` lists them).
    /// Only a scenario's name is taken as its value, so a RELEASE goes before `--demo` (or use
    /// `--demo=SCENARIO`).
    #[arg(long, value_name = "SCENARIO", num_args = 0..=1, value_parser = scenario_name)]
    pub demo: Option<Option<String>>,
    /// With `--demo`: keep the embedded world in DIR, so the next command (another process)
    /// goes on in it: `run --demo unapproved --state DIR`, then `approve`, `promote`.
    #[arg(long, value_name = "DIR", requires = "demo")]
    pub state: Option<PathBuf>,
}

/// `--demo`'s value: a scenario's name. Anything else (a release `ns/name` written after
/// `--demo`, which clap would otherwise swallow as the scenario) is refused naming both.
fn scenario_name(text: &str) -> Result<String, String> {
    let names: Vec<&str> = slipway_demo::scenario::SCENARIOS
        .iter()
        .map(|(name, _, _)| *name)
        .collect();
    if names.contains(&text) {
        return Ok(text.to_owned());
    }
    let release = if text.contains('/') {
        format!(" (a release? give it before `--demo`: `… {text} --demo`)")
    } else {
        String::new()
    };
    Err(format!(
        "`{text}` is not a demo scenario{release}; scenarios: {}",
        names.join(", ")
    ))
}

/// Where a command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `--demo`: every boundary is the embedded world.
    Demo {
        /// The scenario named (`None`: the state directory's, or `backend.scenario`).
        scenario: Option<String>,
        /// `--state DIR`.
        state: Option<PathBuf>,
    },
    /// The configured backends; `simulated` are the in-memory ones listed in
    /// `backend.simulated`.
    Configured {
        /// Boundaries simulated on purpose.
        simulated: Vec<Boundary>,
    },
}

/// Applies the rule of this module (see the module docs) to the loaded configuration.
pub fn choose(
    settings: &Settings,
    demo: &DemoArgs,
    global: &GlobalArgs,
) -> Result<Choice, UserError> {
    let backend = &settings.backend;
    let real: Vec<Boundary> = Boundary::ALL
        .into_iter()
        .filter(|boundary| !backend.is_memory(*boundary))
        .collect();
    let named = |boundaries: &[Boundary]| {
        boundaries
            .iter()
            .map(|boundary| {
                format!(
                    "{boundary} (`backend.{boundary} = \"{}\"`)",
                    backend.implementation(*boundary)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(scenario) = &demo.demo {
        if !real.is_empty() {
            return Err(UserError {
                message: format!(
                    "`--demo` runs on the embedded world, but the configuration names real backends: {}\n\nhint: drop `--demo` to use them, or add `--no-config` to run the demo alone",
                    named(&real)
                ),
            });
        }
        return Ok(Choice::Demo {
            scenario: scenario.clone(),
            state: demo.state.clone(),
        });
    }
    let contradictions: Vec<String> = backend
        .simulated
        .iter()
        .filter(|boundary| real.contains(boundary))
        .map(|boundary| {
            format!(
                "`{boundary}` is listed but `backend.{boundary} = \"{}\"`",
                backend.implementation(*boundary)
            )
        })
        .collect();
    if !contradictions.is_empty() {
        return Err(UserError {
            message: format!(
                "invalid configuration: key `backend.simulated`: {}\n\nhint: list only the boundaries left in memory on purpose",
                contradictions.join("; ")
            ),
        });
    }
    let unlisted: Vec<Boundary> = Boundary::ALL
        .into_iter()
        .filter(|boundary| backend.is_memory(*boundary) && !backend.simulated.contains(boundary))
        .collect();
    if unlisted.len() == Boundary::ALL.len() {
        let what = match config::config_file(global)? {
            _ if global.no_config => "`--no-config`".to_owned(),
            None => format!(
                "{} not found in {}",
                config::DEFAULT_CONFIG_FILE,
                current_dir().display()
            ),
            Some(path) => format!("`{}` has no `[backend]` naming one", path.display()),
        };
        return Err(UserError {
            message: format!(
                "no backends configured: {what} and no --demo\n\nhint: run on the embedded world with --demo, or configure [backend] in {}",
                config::DEFAULT_CONFIG_FILE
            ),
        });
    }
    if !unlisted.is_empty() {
        let names: Vec<String> = unlisted.iter().map(|b| format!("\"{b}\"")).collect();
        return Err(UserError {
            message: format!(
                "mixing real and simulated backends: {} would be simulated (in memory) next to real {}\n\nhint: configure {} for real, or list {} on purpose with `backend.simulated = [{}]` (every output then says so)",
                unlisted
                    .iter()
                    .map(|boundary| boundary.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                named(&real),
                unlisted
                    .iter()
                    .map(|b| format!("`backend.{b}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unlisted.len() == 1 { "it" } else { "them" },
                names.join(", ")
            ),
        });
    }
    // Next to a real system the trail is evidence too: an in-memory one would vanish with the
    // process, approvals and decisions included.
    if !real.is_empty()
        && settings.audit.store == config::AuditStoreKind::File
        && settings.audit.path.is_none()
    {
        return Err(UserError {
            message: format!(
                "invalid configuration: key `audit.path` is required next to real backends ({}): without it the trail would be kept in memory and lost with the process\n\nhint: set `[audit] path = \"audit.jsonl\"` (and keep the file between jobs), or `store = \"cluster\"` to keep it as ConfigMaps",
                real.iter()
                    .map(|boundary| boundary.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    // A saved simulated world runs on its own simulated clock: nothing real may wait on it. A
    // real Prometheus may answer for it when the clock starts inside the history it holds
    // (`backend.state_start`, a test and dry-run facility); a real cluster never.
    if let Some(dir) = &backend.state {
        let waiting: Vec<&str> = [Boundary::Cluster, Boundary::Metrics]
            .into_iter()
            .filter(|boundary| !backend.is_memory(*boundary))
            .filter(|boundary| !(*boundary == Boundary::Metrics && backend.state_start.is_some()))
            .map(|boundary| boundary.as_str())
            .collect();
        if !waiting.is_empty() {
            return Err(UserError {
                message: format!(
                    "invalid configuration: key `backend.state` (`{}`) keeps a simulated cluster between commands, but {} {} real\n\nhint: drop `backend.state` next to a real cluster or Prometheus, or simulate both (`backend.cluster = \"memory\"`, `backend.metrics = \"memory\"`, listed in `backend.simulated`); a Prometheus holding history for the simulated instants is accepted with `backend.state_start`",
                    dir.display(),
                    waiting.join(" and "),
                    if waiting.len() == 1 { "is" } else { "are" }
                ),
            });
        }
    }
    Ok(Choice::Configured {
        simulated: backend.simulated.clone(),
    })
}

fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_owned())
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment's own error"
)]
mod tests {
    use figment::Jail;

    use super::*;

    fn demo(scenario: Option<&str>) -> DemoArgs {
        DemoArgs {
            demo: Some(scenario.map(str::to_owned)),
            state: None,
        }
    }

    /// The refusal for `toml` as the config file (`None`: no file at all), or the choice.
    fn check(jail: &mut Jail, toml: Option<&str>, args: &DemoArgs) -> String {
        let global = GlobalArgs::default();
        if let Some(toml) = toml {
            jail.create_file("slipway.toml", toml).expect("write");
        }
        let result =
            config::load(&global, &[]).and_then(|settings| choose(&settings, args, &global));
        let _ = std::fs::remove_file("slipway.toml");
        match result {
            Ok(choice) => format!("{choice:?}"),
            Err(err) => err
                .message
                .replace(&current_dir().display().to_string(), "[DIR]"),
        }
    }

    #[test]
    fn real_by_default() {
        Jail::expect_with(|jail| {
            let none = DemoArgs::default();
            insta::assert_snapshot!("no_config_no_demo", check(jail, None, &none));
            insta::assert_snapshot!(
                "config_without_backend",
                check(jail, Some("[rollout]\nsteps = [5]\n"), &none)
            );
            insta::assert_snapshot!(
                "real_cluster_default_metrics",
                check(
                    jail,
                    Some(
                        "[backend]\nmodels = \"mlflow\"\nregistry = \"oci\"\ncluster = \"kubernetes\"\nscanner = \"trivy-report\"\n"
                    ),
                    &none
                )
            );
            let listed = check(
                jail,
                Some(
                    "[backend]\nmodels = \"mlflow\"\nregistry = \"oci\"\ncluster = \"kubernetes\"\nscanner = \"trivy-report\"\nsimulated = [\"metrics\"]\n\n[audit]\npath = \"audit.jsonl\"\n",
                ),
                &none,
            );
            assert_eq!(listed, "Configured { simulated: [Metrics] }");
            // A saved simulated world runs on a simulated clock: a real cluster or Prometheus
            // must not wait on it.
            let saved = "[backend]\nmodels = \"mlflow\"\nregistry = \"oci\"\nscanner = \"trivy-report\"\nsimulated = [\"cluster\", \"metrics\"]\nstate = \"world\"\n\n[audit]\nstore = \"cluster\"\n";
            assert_eq!(
                check(jail, Some(saved), &none),
                "Configured { simulated: [Cluster, Metrics] }"
            );
            let real_metrics = check(
                jail,
                Some(&saved.replace(
                    "simulated = [\"cluster\", \"metrics\"]",
                    "metrics = \"prometheus\"\nsimulated = [\"cluster\"]",
                )),
                &none,
            );
            assert!(
                real_metrics.starts_with("invalid configuration: key `backend.state` (`world`) keeps a simulated cluster between commands, but metrics is real"),
                "{real_metrics}"
            );
            // With the clock starting inside a Prometheus's history, real metrics are accepted;
            // a real cluster still is not.
            let started = saved
                .replace(
                    "simulated = [\"cluster\", \"metrics\"]",
                    "metrics = \"prometheus\"\nsimulated = [\"cluster\"]",
                )
                .replace(
                    "state = \"world\"",
                    "state = \"world\"\nstate_start = \"2026-12-04T20:00:00Z\"",
                );
            assert_eq!(
                check(jail, Some(&started), &none),
                "Configured { simulated: [Cluster] }"
            );
            let real_cluster = check(
                jail,
                Some(&started.replace("simulated = [\"cluster\"]", "cluster = \"kubernetes\"")),
                &none,
            );
            assert!(
                real_cluster.starts_with("invalid configuration: key `backend.state` (`world`) keeps a simulated cluster between commands, but cluster is real"),
                "{real_cluster}"
            );
            // Next to real systems the trail must be kept somewhere.
            insta::assert_snapshot!(
                "real_backends_trail_in_memory",
                check(
                    jail,
                    Some(
                        "[backend]\nmodels = \"mlflow\"\nregistry = \"oci\"\ncluster = \"kubernetes\"\nscanner = \"trivy-report\"\nsimulated = [\"metrics\"]\n",
                    ),
                    &none
                )
            );
            insta::assert_snapshot!(
                "listed_but_real",
                check(
                    jail,
                    Some(
                        "[backend]\ncluster = \"kubernetes\"\nsimulated = [\"cluster\", \"models\", \"registry\", \"metrics\", \"scanner\"]\n"
                    ),
                    &none
                )
            );
            insta::assert_snapshot!(
                "demo_with_real_backends",
                check(
                    jail,
                    Some("[backend]\ncluster = \"kubernetes\"\n"),
                    &demo(None)
                )
            );
            assert_eq!(
                check(jail, None, &demo(Some("bad-canary"))),
                "Demo { scenario: Some(\"bad-canary\"), state: None }"
            );
            // Everything simulated on purpose is allowed, and said in every output.
            assert_eq!(
                check(
                    jail,
                    Some(
                        "[backend]\nsimulated = [\"models\", \"registry\", \"cluster\", \"metrics\", \"scanner\"]\n"
                    ),
                    &none
                ),
                "Configured { simulated: [Models, Registry, Cluster, Metrics, Scanner] }"
            );
            Ok(())
        });
    }
}
