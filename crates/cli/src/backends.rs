//! Building [`Backends`] from configuration: each boundary is a real client, or the embedded
//! in-memory world (`--demo`, or a boundary listed in `backend.simulated` on purpose).
//!
//! [`crate::demo::choose`] decides first whether the command may run at all (real by
//! default). Then the memory world is built from the scenario and real clients replace its
//! parts one by one; with `--demo --state DIR` the world is the one saved in DIR
//! (`slipway_demo::persist`). A simulated part never invents evidence for a real one: next to a
//! real cluster the memory metrics hold no series. Every setting a real client lacks is an
//! error naming its key, before anything is contacted.

use slipway_analysis::{PrometheusAuth, PrometheusClient, PrometheusConfig};
use slipway_attest::trust_root::RootSource;
use slipway_attest::{EcdsaP256Key, EcdsaP256PublicKey, Signer as _, Verifier};
use slipway_audit_log::{AuditStore, FileAuditStore, MemoryAuditStore};
use slipway_demo::persist;
use slipway_demo::scenario::WorldOptions;
use slipway_demo::scenario::{self, World};
use slipway_k8s_rollout::{ClusterAuditStore, ConnectOptions, KubeClusterConfig};
use slipway_mlflow::{MlflowAuth, MlflowClient, MlflowConfig};
use slipway_pipeline::{
    BackendInfo, FanOut, Notifier, ReleaseSpec, SystemClock, WebhookKind, WebhookNotifier,
};
use slipway_registry::{DockerConfig, OciRegistry, RegistryConfig};
use slipway_scanner::{TrivyCli, TrivyReportFile};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{
    AuditStoreKind, Boundary, ClusterBackend, MetricsBackend, ModelsBackend, RegistryBackend,
    ScannerBackend, Settings,
};
use crate::demo::{Choice, DemoArgs, choose};
use crate::{GlobalArgs, UserError};

/// Env vars the real clients read, declared once.
pub mod env_vars {
    /// Docker's config directory override.
    pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
    /// The user's home, for `~/.docker`.
    pub const HOME: &str = "HOME";
    /// Where `trivy` is looked for.
    pub const PATH: &str = "PATH";
    /// Slipway's cache directory (the refreshed Sigstore trusted root and its TUF metadata).
    pub const SLIPWAY_CACHE_DIR: &str = "SLIPWAY_CACHE_DIR";
    /// The XDG base directory for caches, used when `SLIPWAY_CACHE_DIR` is unset.
    pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
}

/// The backends, the memory world behind the parts that stayed in memory, and a line per real
/// client for the story.
pub struct Built {
    /// What the pipeline uses.
    pub backends: slipway_pipeline::Backends,
    /// The embedded world (its memory parts may have been replaced).
    pub world: World,
    /// `models: mlflow at http://…`, one per real client.
    pub real: Vec<String>,
    /// Where the command runs: `--demo` or the configured backends.
    pub choice: Choice,
    /// The scenario of the embedded world (the saved one with `--state`).
    pub scenario: String,
    /// Each system's implementation and whether it is simulated, for the report.
    pub systems: BTreeMap<String, BackendInfo>,
}

impl Built {
    /// The systems simulated in this run.
    pub fn simulated(&self) -> Vec<String> {
        self.systems
            .iter()
            .filter(|(_, info)| info.simulated)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// How the story's first line says where the command runs: `on the embedded demo world
    /// (…)` or `with <real clients>; SIMULATED on purpose: metrics (in memory)`.
    pub fn banner(&self) -> String {
        match &self.choice {
            Choice::Demo { state, .. } => format!(
                "on the embedded demo world (scenario `{}`{}; every backend simulated)",
                self.scenario,
                state
                    .as_ref()
                    .map(|dir| format!(", state in {}", dir.display()))
                    .unwrap_or_default()
            ),
            Choice::Configured { simulated } => {
                let mut text = if self.real.is_empty() {
                    "on no real backend".to_owned()
                } else {
                    format!("with {}", self.real.join("; "))
                };
                if !simulated.is_empty() {
                    text.push_str(&format!(
                        "; SIMULATED on purpose (backend.simulated): {} (in memory)",
                        self.simulated().join(", ")
                    ));
                }
                text
            }
        }
    }

    /// `SIMULATED: metrics` for the story's last line, or `None` when every system is real.
    pub fn simulated_note(&self) -> Option<String> {
        let simulated = self.simulated();
        match &self.choice {
            _ if simulated.is_empty() => None,
            Choice::Demo { .. } => Some("SIMULATED: every backend (--demo)".to_owned()),
            Choice::Configured { .. } => Some(format!(
                "SIMULATED on purpose: {} (backend.simulated)",
                simulated.join(", ")
            )),
        }
    }
}

fn missing(key: &str, hint: &str) -> UserError {
    UserError {
        message: format!(
            "invalid configuration: key `{key}` is required by the backend chosen\n\nhint: {hint}"
        ),
    }
}

fn invalid(key: &str, err: impl std::fmt::Display) -> UserError {
    let text = err.to_string();
    match text.split_once("\n\nhint: ") {
        Some((message, hint)) => UserError {
            message: format!("invalid configuration: key `{key}`: {message}\n\nhint: {hint}"),
        },
        None => UserError {
            message: format!("invalid configuration: key `{key}`: {text}"),
        },
    }
}

/// The MLflow client's settings: MLflow's own environment (`MLFLOW_TRACKING_URI`, its
/// credentials, TLS and timeouts) read as MLflow's clients read it, with `mlflow.tracking_uri`
/// from slipway.toml standing in for the URI and `mlflow.token` for the credentials. The
/// environment's credentials are kept with a configured URI: a URI in the file and
/// `MLFLOW_TRACKING_TOKEN` in CI's secrets is the common split.
fn mlflow_config(
    mlflow: &crate::config::MlflowSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<MlflowConfig, UserError> {
    let mut config = match &mlflow.tracking_uri {
        Some(uri) => MlflowConfig::from_env_map(|name: &str| {
            if name == slipway_mlflow::env_vars::MLFLOW_TRACKING_URI {
                Some(uri.clone())
            } else {
                env(name)
            }
        }),
        None => MlflowConfig::from_env_map(env),
    }
    .map_err(|err| invalid("mlflow.tracking_uri", err))?;
    if let Some(token) = &mlflow.token {
        config.auth = MlflowAuth::Bearer(token.clone());
    }
    Ok(config)
}

/// The real OCI registry client: credentials as docker reads them (`registry.docker_config`,
/// `$DOCKER_CONFIG`, `~/.docker`), plain HTTP only for the hosts in `registry.insecure` and
/// `extra_insecure` (cosign's `--allow-insecure-registry HOST`). Returns where the credentials
/// came from, for the story.
pub fn oci_registry(
    settings: &Settings,
    extra_insecure: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(OciRegistry, String), UserError> {
    let dir = settings.registry.docker_config.clone().or_else(|| {
        slipway_registry::default_config_dir(
            env(env_vars::DOCKER_CONFIG).map(OsString::from),
            env(env_vars::HOME).map(PathBuf::from),
        )
    });
    let credentials = match &dir {
        Some(dir) => {
            DockerConfig::load(dir).map_err(|err| invalid("registry.docker_config", err))?
        }
        None => DockerConfig::empty(),
    };
    let mut config = RegistryConfig::default();
    for registry in settings.registry.insecure.iter().chain(extra_insecure) {
        config = config.insecure(registry);
    }
    let source = credentials.source().to_string();
    let registry = OciRegistry::new(config, credentials).map_err(|err| invalid("registry", err))?;
    Ok((registry, source))
}

/// An IMAGE argument, or an error naming it with a hint.
pub fn parse_image(text: &str) -> Result<slipway_core::ImageRef, UserError> {
    slipway_core::ImageRef::parse(text).map_err(|err| UserError {
        message: with_hint(
            format!("invalid IMAGE `{text}`: {err}"),
            "write `registry/repository:tag` or `registry/repository@sha256:…`",
        ),
    })
}

/// `message` with `hint` after a blank line, unless the message already ends with one.
pub fn with_hint(message: String, hint: &str) -> String {
    if message.contains("\n\nhint: ") {
        message
    } else {
        format!("{message}\n\nhint: {hint}")
    }
}

/// `text` pinned to the digest a deploy would run: a digest as given (it must exist in the
/// registry), a tag resolved as `run` resolves it (to the configured platform's manifest of an
/// index). Signatures and attestations bind digests, so every standalone command pins first.
pub async fn pin_image(
    registry: &dyn slipway_registry::Registry,
    text: &str,
) -> anyhow::Result<slipway_core::ImageRef> {
    use anyhow::Context as _;
    let image = parse_image(text)?;
    if image.digest().is_some() {
        if !registry
            .exists(&image)
            .await
            .with_context(|| format!("looking up `{image}`"))?
        {
            return Err(UserError {
                message: format!(
                    "`{image}` does not exist in the registry\n\nhint: push the image first, or check the digest"
                ),
            }
            .into());
        }
        return Ok(image);
    }
    let resolved = registry
        .resolve(&image)
        .await
        .with_context(|| format!("resolving `{image}` to a digest"))?;
    Ok(image.with_digest(resolved.digest))
}

/// The real MLflow client, with the tracking URI `uri` when given (a flag), else MLflow's own
/// `MLFLOW_TRACKING_URI`, else `mlflow.tracking_uri`; credentials as [`mlflow_config`] reads them.
pub fn mlflow_client(
    settings: &Settings,
    uri: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(MlflowClient, String), UserError> {
    let mut mlflow = settings.mlflow.clone();
    if let Some(uri) = uri
        .map(str::to_owned)
        .or_else(|| env(slipway_mlflow::env_vars::MLFLOW_TRACKING_URI))
    {
        mlflow.tracking_uri = Some(uri);
    }
    if mlflow.tracking_uri.is_none() {
        return Err(UserError {
            message: "no MLflow tracking server given\n\nhint: pass `--mlflow-uri URL`, set `MLFLOW_TRACKING_URI`, or set `mlflow.tracking_uri` in slipway.toml".to_owned(),
        });
    }
    let config = mlflow_config(&mlflow, env)?;
    let uri = config.uri.to_string();
    let client = MlflowClient::new(config).map_err(|err| invalid("mlflow", err))?;
    Ok((client, uri))
}

/// Reads an encrypted `cosign.key` with its password (`signing.password`, else
/// `COSIGN_PASSWORD`, as cosign reads it). `key` names where the path came from (a flag or
/// `signing.key`) in errors.
pub fn load_signing_key(
    path: &std::path::Path,
    password: Option<&slipway_core::Secret>,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<EcdsaP256Key, UserError> {
    let name = path.display().to_string();
    let pem = std::fs::read_to_string(path).map_err(|err| {
        invalid(
            key,
            format!(
                "cannot read `{name}`: {err}\n\nhint: write one with `cosign generate-key-pair`"
            ),
        )
    })?;
    let password = match password {
        Some(password) => password.clone(),
        None => slipway_attest::keyfile::cosign_password(
            env(slipway_attest::keyfile::COSIGN_PASSWORD_ENV),
            || {
                Err(std::io::Error::other(
                    "no password prompt in non-interactive runs",
                ))
            },
        )
        .map_err(|err| invalid("signing.password", err))?,
    };
    EcdsaP256Key::from_cosign_pem(&name, &pem, &password).map_err(|err| invalid(key, err))
}

/// Builds the backends, after [`choose`] allowed the command to run. `env` reads environment
/// variables (the binaries pass `std::env::var`).
pub async fn build(
    settings: &Settings,
    global: &GlobalArgs,
    demo: &DemoArgs,
    spec: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Built> {
    let choice = choose(settings, demo, global)?;
    let backend = &settings.backend;
    let (world, audit, scenario) = match &choice {
        Choice::Demo {
            scenario,
            state: Some(dir),
        } => {
            // The world's trail lives with it, unless the configuration names one.
            let audit: Arc<dyn AuditStore> = match &settings.audit.path {
                Some(_) => audit,
                None => Arc::new(FileAuditStore::new(persist::trail_path(dir))),
            };
            let hooks = persist::Hooks::from_env(env).map_err(|err| UserError {
                message: err.to_string(),
            })?;
            // A new world starts from the scenario named, else `backend.scenario`; a saved one
            // goes on with its own.
            let scenario = scenario
                .clone()
                .or_else(|| (!persist::holds_world(dir)).then(|| backend.scenario.clone()));
            let persisted =
                persist::open_or_create(dir, scenario.as_deref(), spec, audit.clone(), hooks)
                    .await
                    .map_err(|err| UserError {
                        message: err.to_string(),
                    })?;
            (persisted.world, audit, persisted.scenario)
        }
        Choice::Demo {
            scenario,
            state: None,
        } => {
            let name = scenario.clone().unwrap_or_else(|| backend.scenario.clone());
            let world = scenario::build_with_audit(&name, spec, audit.clone()).await?;
            (world, audit, name)
        }
        Choice::Configured { simulated } => {
            // The world's seeded history and approvals go into the caller's trail only when
            // every backend is simulated, never next to real releases.
            let all_memory = simulated.len() == Boundary::ALL.len();
            let seeded: Arc<dyn AuditStore> = if all_memory {
                audit.clone()
            } else {
                Arc::new(MemoryAuditStore::new())
            };
            let name = backend.scenario.clone();
            let options = WorldOptions {
                real_cluster: backend.cluster == ClusterBackend::Kubernetes,
            };
            // Simulated time only when nothing real waits: a real cluster or Prometheus needs
            // real time, except a Prometheus asked about the saved world's simulated instants
            // (`backend.state_start` inside the history it holds).
            let world = if let Some(dir) = &backend.state {
                // Checked by `choose`: the cluster is simulated, and the metrics too unless the
                // clock starts at `backend.state_start`.
                let hooks = persist::Hooks::from_env(env).map_err(|err| UserError {
                    message: err.to_string(),
                })?;
                let scenario = (!persist::holds_world(dir)).then_some(name.as_str());
                persist::open_or_create_at(dir, scenario, spec, seeded, hooks, backend.state_start)
                    .await
                    .map_err(|err| invalid("backend.state", err))?
                    .world
            } else if backend.cluster == ClusterBackend::Memory
                && backend.metrics == MetricsBackend::Memory
            {
                scenario::build_with_audit(&name, spec, seeded).await?
            } else {
                scenario::build_with(&name, spec, seeded, Arc::new(SystemClock), options).await?
            };
            (world, audit, name)
        }
    };
    let systems = Boundary::ALL
        .into_iter()
        .map(|boundary| {
            let implementation = backend.implementation(boundary);
            (
                boundary.as_str().to_owned(),
                BackendInfo {
                    implementation: implementation.to_owned(),
                    simulated: implementation == "memory",
                },
            )
        })
        .collect();
    let mut backends = world.backends.clone();
    backends.audit = audit;
    let mut real = Vec::new();

    if backend.models == ModelsBackend::Mlflow {
        let config = mlflow_config(&settings.mlflow, env)?;
        real.push(format!("models: MLflow at {}", config.uri));
        backends.models =
            Arc::new(MlflowClient::new(config).map_err(|err| invalid("mlflow", err))?);
    }

    if backend.registry == RegistryBackend::Oci {
        let (registry, source) = oci_registry(settings, &[], env)?;
        real.push(format!(
            "registry: OCI distribution API, credentials from {source}"
        ));
        backends.registry = Arc::new(registry);
    }

    load_keys(settings, env, &mut backends, &mut real)?;
    backends.approvals = approval_trust(settings, &choice)?;

    if backend.cluster == ClusterBackend::Kubernetes {
        let options = ConnectOptions {
            kubeconfig: settings.kubernetes.kubeconfig.clone(),
            context: settings.kubernetes.context.clone(),
            namespace: Some(spec.release.namespace.clone()),
        };
        let config = KubeClusterConfig {
            dry_run: settings.kubernetes.dry_run,
            ..KubeClusterConfig::default()
        };
        let cluster = slipway_k8s_rollout::connect(&options, config)
            .await
            .map_err(|err| invalid("kubernetes", err))?;
        real.push(format!(
            "cluster: Kubernetes ({}){}",
            settings
                .kubernetes
                .context
                .as_deref()
                .unwrap_or("current context"),
            if settings.kubernetes.dry_run {
                ", server-side dry run"
            } else {
                ""
            }
        ));
        backends.cluster = Arc::new(cluster);
    }

    if backend.metrics == MetricsBackend::Prometheus {
        let url = settings.prometheus.url.clone().ok_or_else(|| {
            missing(
                "prometheus.url",
                "set `[prometheus] url = \"http://prometheus:9090\"`",
            )
        })?;
        let mut config = PrometheusConfig::new(url.clone());
        if let Some(token) = &settings.prometheus.token {
            config = config.auth(PrometheusAuth::Bearer(token.clone()));
        }
        real.push(format!("metrics: Prometheus at {url}"));
        backends.metrics =
            Arc::new(PrometheusClient::new(config).map_err(|err| invalid("prometheus.url", err))?);
    }

    match backend.scanner {
        ScannerBackend::Memory => {}
        ScannerBackend::TrivyReport => {
            let path = settings.scanner.report.clone().ok_or_else(|| missing("scanner.report", "point it at the JSON written by `trivy image --format json --output trivy.json`"))?;
            real.push(format!("scanner: Trivy report {}", path.display()));
            backends.scanner = Arc::new(TrivyReportFile::new(path));
        }
        ScannerBackend::Trivy => {
            let path = env(env_vars::PATH).map(OsString::from).unwrap_or_default();
            let trivy = TrivyCli::find_on_path(&path).ok_or_else(|| UserError {
                message: "invalid configuration: key `backend.scanner` is `trivy` but no `trivy` is on PATH\n\nhint: install Trivy, or scan in CI and use `backend.scanner = \"trivy-report\"`".to_owned(),
            })?;
            real.push("scanner: trivy from PATH".to_owned());
            backends.scanner = Arc::new(trivy);
        }
    }

    audit_store(settings, spec, &mut backends, &mut real, &choice);

    let mut webhooks: Vec<Box<dyn Notifier>> = Vec::new();
    // An empty URL is no webhook: CI fills the variable from a secret that may not be set
    // (GitHub gives an empty string), and the examples call that secret optional.
    let configured = |url: &&slipway_core::Secret| !url.expose().trim().is_empty();
    if let Some(url) = settings.notify.slack_webhook.as_ref().filter(configured) {
        webhooks.push(Box::new(
            WebhookNotifier::new(WebhookKind::Slack, url.clone())
                .map_err(|err| invalid("notify.slack_webhook", err))?,
        ));
        real.push("notify: Slack webhook".to_owned());
    }
    if let Some(url) = settings.notify.webhook.as_ref().filter(configured) {
        webhooks.push(Box::new(
            WebhookNotifier::new(WebhookKind::Json, url.clone())
                .map_err(|err| invalid("notify.webhook", err))?,
        ));
        real.push("notify: JSON webhook".to_owned());
    }
    if !webhooks.is_empty() {
        // The world's memory notifier stays first, so the story still shows every notification.
        let memory: Box<dyn Notifier> = Box::new(ForwardTo(world.notifier.clone()));
        webhooks.insert(0, memory);
        backends.notifier = Arc::new(FanOut {
            notifiers: webhooks,
        });
    }

    let built = Built {
        backends,
        world,
        real,
        choice,
        scenario,
        systems,
    };
    // Next to real systems, every story line that rests on a simulated one says so.
    if matches!(built.choice, Choice::Configured { .. }) {
        let simulated = built.simulated();
        if !simulated.is_empty() {
            crate::story::mark_simulated(&simulated);
        }
    }
    Ok(built)
}

/// The signing key (`signing.key`, an encrypted `cosign.key`) and trusted public keys
/// (`signing.trusted_keys`). With neither on a real registry, nothing is signed and only
/// signatures by configured keys count; the demo key serves the memory registry alone.
fn load_keys(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
    backends: &mut slipway_pipeline::Backends,
    real: &mut Vec<String>,
) -> Result<(), UserError> {
    load_provenance_keys(settings, backends, real)?;
    let signing = &settings.signing;
    let configured = signing.key.is_some() || !signing.trusted_keys.is_empty();
    if !configured {
        if settings.backend.registry == RegistryBackend::Oci {
            backends.signer = None;
            backends.trusted_keys.clear();
        }
        return Ok(());
    }
    let mut trusted: Vec<Arc<dyn Verifier>> = Vec::new();
    backends.signer = None;
    if let Some(path) = &signing.key {
        let name = path.display().to_string();
        let key = load_signing_key(path, signing.password.as_ref(), "signing.key", env)?;
        real.push(format!("signing: {} ({})", name, key.key_id()));
        trusted.push(Arc::new(key.public()));
        backends.signer = Some(Arc::new(key));
    }
    for path in &signing.trusted_keys {
        let name = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|err| {
            invalid(
                "signing.trusted_keys",
                format!("cannot read `{name}`: {err}"),
            )
        })?;
        trusted.push(Arc::new(
            EcdsaP256PublicKey::from_pem(&name, &pem)
                .map_err(|err| invalid("signing.trusted_keys", err))?,
        ));
    }
    backends.trusted_keys = trusted;
    Ok(())
}

/// Slipway's cache directory: `$SLIPWAY_CACHE_DIR`, else `$XDG_CACHE_HOME/slipway` (an absolute
/// path, as the XDG spec requires), else `$HOME/.cache/slipway`; `None` without any of them.
pub fn cache_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| {
        env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    set(env_vars::SLIPWAY_CACHE_DIR)
        .or_else(|| {
            set(env_vars::XDG_CACHE_HOME)
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join("slipway"))
        })
        .or_else(|| set(env_vars::HOME).map(|home| home.join(".cache").join("slipway")))
}

/// The Sigstore trusted root keyless verification uses, and where it came from:
/// `signing.trusted_root`, else the root `slipway-audit trusted-root refresh` wrote in the
/// [`cache_dir`], else the built-in one (`slipway_attest::trust_root`). Read offline: nothing is
/// fetched here, during a verification or a release.
pub fn trusted_root(
    settings: &Settings,
) -> Result<(slipway_attest::bundle::TrustedRoot, RootSource), UserError> {
    trusted_root_with_content(settings).map(|(root, source, _)| (root, source))
}

/// [`trusted_root`] and the document's bytes, read once (what `trusted-root show` prints is
/// what was parsed).
pub fn trusted_root_with_content(
    settings: &Settings,
) -> Result<(slipway_attest::bundle::TrustedRoot, RootSource, Vec<u8>), UserError> {
    let source = trusted_root_source(settings, &|name| std::env::var(name).ok());
    let error = |err: slipway_attest::Error| match &source {
        RootSource::Configured(_) => invalid("signing.trusted_root", err),
        _ => UserError {
            message: err.to_string(),
        },
    };
    let content = source.read().map_err(error)?;
    let root = source.parse(&content).map_err(error)?;
    Ok((root, source, content))
}

/// Which trusted root [`trusted_root`] reads, without reading it.
pub fn trusted_root_source(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> RootSource {
    RootSource::select(
        settings.signing.trusted_root.as_deref(),
        cache_dir(env).as_deref(),
    )
}

/// Which trusted root a keyless verification used, for reports (`--output json`).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct TrustedRootUsed {
    /// `configured` (`[signing] trusted_root`), `refreshed` (`trusted-root refresh`) or
    /// `built-in`.
    pub source: String,
    /// The file, for a configured or refreshed root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Hex SHA-256 of the document.
    pub sha256: String,
}

impl TrustedRootUsed {
    /// The report of `root`, read from `source`.
    pub fn new(root: &slipway_attest::bundle::TrustedRoot, source: &RootSource) -> TrustedRootUsed {
        TrustedRootUsed {
            source: source.kind().to_owned(),
            path: source.path().map(|path| path.display().to_string()),
            sha256: root.sha256.clone(),
        }
    }
}

/// What makes an approval in the trail count: only with `--demo` may entries go unsigned and a
/// name given on the command line approve; the approver keys are `policy.approvals.keys`, each
/// named after its owner, read for every command (a key that cannot be read is an error naming
/// the key, before anything is contacted).
fn approval_trust(
    settings: &Settings,
    choice: &Choice,
) -> Result<slipway_pipeline::ApprovalTrust, UserError> {
    let mut keys: Vec<(String, Arc<dyn Verifier>)> = Vec::new();
    for (owner, path) in &settings.policy.approvals.keys {
        let key = format!("policy.approvals.keys.{owner}");
        let name = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|err| {
            invalid(
                &key,
                format!("cannot read `{name}`: {err}\n\nhint: point it at the approver's public key (`cosign.pub`)"),
            )
        })?;
        let public = EcdsaP256PublicKey::from_pem(&name, &pem).map_err(|err| invalid(&key, err))?;
        keys.push((owner.clone(), Arc::new(public)));
    }
    Ok(slipway_pipeline::ApprovalTrust {
        demo: matches!(choice, Choice::Demo { .. }),
        keys,
    })
}

/// Signs the trail's entries with `signer` from now on: `approve --key` outside `--demo` when
/// no deploy key is configured, so the approval's entry is signed by the approver's own key
/// (which the approval gate accepts for that entry alone). In the demo world nothing changes.
pub fn sign_trail_with(
    settings: &Settings,
    spec: &ReleaseSpec,
    built: &mut Built,
    signer: Arc<dyn slipway_attest::Signer>,
) {
    if matches!(built.choice, Choice::Demo { .. }) || settings.signing.key.is_some() {
        return;
    }
    let mut real = Vec::new();
    audit_store_signed(settings, spec, &mut built.backends, &mut real, Some(signer));
}

/// The build keys whose provenance counts (`[policy.provenance] keys`). Listed keys replace the
/// demo build key; with none listed on a real registry no provenance can verify (and the gate
/// says which key to set), since the deploy key never vouches for a build.
fn load_provenance_keys(
    settings: &Settings,
    backends: &mut slipway_pipeline::Backends,
    real: &mut Vec<String>,
) -> Result<(), UserError> {
    let paths = &settings.policy.provenance.keys;
    if paths.is_empty() {
        if settings.backend.registry == RegistryBackend::Oci {
            backends.provenance_keys.clear();
        }
        return Ok(());
    }
    backends.provenance_keys = load_public_keys(paths, "policy.provenance.keys")?;
    for key in &backends.provenance_keys {
        real.push(format!("provenance key: {}", key.key_id()));
    }
    Ok(())
}

/// Reads `cosign.pub` files, each error naming `key` and the file.
pub fn load_public_keys(
    paths: &[std::path::PathBuf],
    key: &str,
) -> Result<Vec<Arc<dyn Verifier>>, UserError> {
    paths
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let pem = std::fs::read_to_string(path).map_err(|err| {
                invalid(
                    key,
                    format!("cannot read `{name}`: {err}\n\nhint: write the public key with `cosign generate-key-pair` (or `cosign public-key --key cosign.key`)"),
                )
            })?;
            EcdsaP256PublicKey::from_pem(&name, &pem)
                .map(|public| Arc::new(public) as Arc<dyn Verifier>)
                .map_err(|err| invalid(key, err))
        })
        .collect()
}

/// The trail: ConfigMaps on the cluster backend (`audit.store = "cluster"`, so every runner
/// sees it) or the file the caller opened; entries are signed with the deploy key when one is
/// configured (`signing.key`), never with the demo key. Outside `--demo` an unsigned trail is
/// refused at its first write (`UnsignedTrail`): every entry outside the demo is signed, so
/// `slipway-audit verify` can prove who wrote it. Commands that only read (`plan`, `status`)
/// still run.
fn audit_store(
    settings: &Settings,
    spec: &ReleaseSpec,
    backends: &mut slipway_pipeline::Backends,
    real: &mut Vec<String>,
    choice: &Choice,
) {
    let signer = backends
        .signer
        .clone()
        .filter(|_| settings.signing.key.is_some());
    let unsigned = signer.is_none() && matches!(choice, Choice::Configured { .. });
    audit_store_signed(settings, spec, backends, real, signer);
    if unsigned {
        backends.audit = Arc::new(UnsignedTrail(backends.audit.clone()));
    }
}

/// Refuses every append: outside `--demo` a trail entry without a signature is never written.
struct UnsignedTrail(Arc<dyn AuditStore>);

#[async_trait::async_trait]
impl AuditStore for UnsignedTrail {
    async fn append(
        &self,
        _at: jiff::Timestamp,
        _event: slipway_audit_log::Event,
    ) -> Result<slipway_audit_log::Entry, slipway_audit_log::Error> {
        Err(slipway_audit_log::Error::Backend {
            location: "(configured store)".to_owned(),
            operation: "append".to_owned(),
            message: "refusing to write an unsigned entry outside --demo (hint: set `signing.key` to the deploy key, an encrypted cosign.key; every entry is signed with it so `slipway-audit verify` can prove who wrote the trail)".to_owned(),
        })
    }

    async fn read(&self) -> Result<slipway_audit_log::Trail, slipway_audit_log::Error> {
        self.0.read().await
    }
}

fn audit_store_signed(
    settings: &Settings,
    spec: &ReleaseSpec,
    backends: &mut slipway_pipeline::Backends,
    real: &mut Vec<String>,
    signer: Option<Arc<dyn slipway_attest::Signer>>,
) {
    match settings.audit.store {
        AuditStoreKind::Cluster => {
            let mut store = ClusterAuditStore::new(backends.cluster.clone(), spec.release.clone());
            if let Some(signer) = &signer {
                store = store.with_signer(signer.clone());
            }
            real.push(format!(
                "audit: ConfigMaps in namespace {}",
                spec.release.namespace
            ));
            backends.audit = Arc::new(store);
        }
        AuditStoreKind::File => {
            if let (Some(path), Some(signer)) = (&settings.audit.path, &signer) {
                real.push(format!(
                    "audit: {} signed by {}",
                    path.display(),
                    signer.key_id()
                ));
                backends.audit = Arc::new(FileAuditStore::new(path).with_signer(signer.clone()));
            }
        }
    }
}

/// Lets an `Arc`'d notifier sit in a [`FanOut`].
struct ForwardTo(Arc<slipway_pipeline::MemoryNotifier>);

#[async_trait::async_trait]
impl Notifier for ForwardTo {
    async fn notify(&self, notification: &slipway_pipeline::Notification) -> Result<(), String> {
        self.0.notify(notification).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use slipway_core::Secret;

    use super::*;

    #[track_caller]
    fn check(
        configured_uri: Option<&str>,
        vars: &[(&str, &str)],
        expect: Result<(&str, &str), &str>,
    ) {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        let env = |key: &str| vars.get(key).cloned();
        let settings = crate::config::MlflowSettings {
            tracking_uri: configured_uri.map(str::to_owned),
            token: None,
        };
        match (mlflow_config(&settings, &env), expect) {
            (Ok(config), Ok((uri, auth))) => {
                assert_eq!(config.uri, uri);
                let got = match &config.auth {
                    MlflowAuth::None => "none".to_owned(),
                    MlflowAuth::Bearer(token) => format!("bearer {}", token.expose()),
                    MlflowAuth::Basic { user, password } => {
                        format!("basic {user}:{}", password.expose())
                    }
                };
                assert_eq!(got, auth);
            }
            (Err(err), Err(fragment)) => {
                assert!(err.message.contains(fragment), "{}", err.message);
            }
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn the_cache_dir_is_slipways_then_xdgs_then_homes() {
        let check = |vars: &[(&str, &str)], expected: Option<&str>| {
            let env = |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            };
            assert_eq!(cache_dir(&env), expected.map(PathBuf::from), "{vars:?}");
        };
        let all = [
            ("SLIPWAY_CACHE_DIR", "/slipway"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/me"),
        ];
        check(&all, Some("/slipway"));
        check(&all[1..], Some("/xdg/slipway"));
        check(&all[2..], Some("/home/me/.cache/slipway"));
        check(
            &[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/me")],
            Some("/home/me/.cache/slipway"),
        );
        check(
            &[("SLIPWAY_CACHE_DIR", ""), ("HOME", "/home/me")],
            Some("/home/me/.cache/slipway"),
        );
        check(&[], None);
    }

    #[test]
    fn environment_credentials_stay_with_a_configured_uri() {
        let toml_uri = Some("http://mlflow.internal:5000");
        check(
            toml_uri,
            &[("MLFLOW_TRACKING_TOKEN", "tok-123")],
            Ok(("http://mlflow.internal:5000", "bearer tok-123")),
        );
        check(
            toml_uri,
            &[
                ("MLFLOW_TRACKING_USERNAME", "ci"),
                ("MLFLOW_TRACKING_PASSWORD", "pw"),
            ],
            Ok(("http://mlflow.internal:5000", "basic ci:pw")),
        );
        // The configured URI wins over the environment's.
        check(
            toml_uri,
            &[
                ("MLFLOW_TRACKING_URI", "http://elsewhere:5000"),
                ("MLFLOW_TRACKING_TOKEN", "tok-123"),
            ],
            Ok(("http://mlflow.internal:5000", "bearer tok-123")),
        );
        check(toml_uri, &[], Ok(("http://mlflow.internal:5000", "none")));
        check(
            None,
            &[
                ("MLFLOW_TRACKING_URI", "http://env:5000"),
                ("MLFLOW_TRACKING_TOKEN", "tok-9"),
            ],
            Ok(("http://env:5000", "bearer tok-9")),
        );
        check(None, &[], Err("key `mlflow.tracking_uri`"));
    }

    #[test]
    fn the_configured_token_wins() {
        let settings = crate::config::MlflowSettings {
            tracking_uri: Some("http://mlflow.internal:5000".to_owned()),
            token: Some(Secret::new("from-config".to_owned())),
        };
        let env = |key: &str| (key == "MLFLOW_TRACKING_TOKEN").then(|| "from-env".to_owned());
        let config = mlflow_config(&settings, &env).expect("config");
        assert!(
            matches!(&config.auth, MlflowAuth::Bearer(token) if token.expose() == "from-config")
        );
    }
}
