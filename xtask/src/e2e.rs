//! `cargo xtask e2e --kubeconfig PATH [--context NAME]`: the real-cluster suite of
//! slipway-k8s-rollout (the `#[ignore = "needs cluster"]` tests in `tests/it/e2e.rs`) against a
//! cluster you have, such as kind or k3s.
//!
//! It is not part of `ci`: CI has no cluster. The tests create and delete their own namespaces
//! (`slipway-e2e-*`), so the kubeconfig's user needs to be allowed to create namespaces.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context as _, Result, bail};
use crate::process;

/// Environment variables the e2e tests read (declared in crates/k8s-rollout/tests/it/e2e.rs too).
const KUBECONFIG_VAR: &str = "SLIPWAY_E2E_KUBECONFIG";
const CONTEXT_VAR: &str = "SLIPWAY_E2E_CONTEXT";

/// Parsed `e2e` arguments.
#[derive(Debug)]
pub(crate) struct Args {
    kubeconfig: PathBuf,
    context: Option<String>,
}

impl Args {
    pub(crate) fn parse(args: &[String]) -> Result<Args> {
        let mut kubeconfig = None;
        let mut context = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value = |flag: &str| {
                rest.next()
                    .cloned()
                    .with_context(|| format!("`{flag}` needs a value"))
            };
            match arg.as_str() {
                "--kubeconfig" => kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
                "--context" => context = Some(value("--context")?),
                other => bail!(
                    "`e2e` does not take `{other}`\n\nhint: cargo xtask e2e --kubeconfig PATH [--context NAME]"
                ),
            }
        }
        let Some(kubeconfig) = kubeconfig else {
            bail!(
                "`e2e` needs --kubeconfig PATH\n\nhint: for kind: `kind get kubeconfig > /tmp/kind.yaml && cargo xtask e2e --kubeconfig /tmp/kind.yaml`"
            );
        };
        Ok(Args {
            kubeconfig,
            context,
        })
    }
}

/// Runs the real-cluster tests one at a time (they share the cluster's capacity).
pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    let kubeconfig = std::fs::canonicalize(&args.kubeconfig).with_context(|| {
        format!(
            "kubeconfig `{}` not found\n\nhint: pass the file kubectl uses, e.g. ~/.kube/config",
            args.kubeconfig.display()
        )
    })?;
    let mut command = Command::new(process::cargo());
    command
        .current_dir(root)
        .args([
            "test",
            "--locked",
            "-p",
            "slipway-k8s-rollout",
            "--test",
            "it",
            "--",
            "--ignored",
            "--test-threads=1",
            "e2e::",
        ])
        .env(KUBECONFIG_VAR, &kubeconfig);
    if let Some(context) = &args.context {
        command.env(CONTEXT_VAR, context);
    }
    process::run_to_stderr(&mut command)
}
