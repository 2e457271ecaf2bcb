//! Configuration: defaults < `slipway.toml` (or `--config PATH`) < `SLIPWAY_*` env < flags.
//!
//! - Every section denies unknown keys, so a typo is an error naming the file and the key, not a
//!   silently ignored setting.
//! - Env keys use `__` between levels (`SLIPWAY_ROLLOUT__STEPS=[5,50]`,
//!   `SLIPWAY_MLFLOW__TOKEN=…`). Only variables with a `__` are read, so unrelated `SLIPWAY_*`
//!   variables (such as the test suite's `SLIPWAY_TEST_MLFLOW`) never break a run.
//! - Flags merge last and only when given (uv's order, not figment's example order).
//! - Secrets are [`Secret`]s: `--print-config` and every `Debug` show `<redacted>`.
//! - Files are read exactly where named: no search through parent directories, which would make a
//!   CI run depend on what happens to sit above the checkout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};
use slipway_analysis::AnalysisPlan;
use slipway_core::{Secret, Strategy};
use slipway_gates::Policy;

use crate::{GlobalArgs, UserError};

/// The config file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "slipway.toml";
/// Prefix of environment variables that set config keys.
pub const ENV_PREFIX: &str = "SLIPWAY_";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Which release.
    pub release: ReleaseSettings,
    /// Which model version.
    pub model: ModelSettings,
    /// Which image.
    pub image: ImageSettings,
    /// How to roll out.
    pub rollout: RolloutSettings,
    /// Canary analysis.
    #[schemars(with = "serde_json::Value")]
    pub analysis: AnalysisPlan,
    /// Gate policy: model, vulnerabilities, signatures, deploy windows, approvals.
    #[schemars(with = "serde_json::Value")]
    pub policy: Policy,
    /// Signing and verification keys.
    pub signing: SigningSettings,
    /// Facts about the released change (its commit time, for DORA).
    pub provenance: ProvenanceSettings,
    /// Which implementation serves each boundary.
    pub backend: BackendSettings,
    /// MLflow connection (for `backend.models = "mlflow"`).
    pub mlflow: MlflowSettings,
    /// OCI registry access (for `backend.registry = "oci"`).
    pub registry: RegistrySettings,
    /// Cluster access (for `backend.cluster = "kubernetes"`).
    pub kubernetes: KubernetesSettings,
    /// Prometheus (for `backend.metrics = "prometheus"`).
    pub prometheus: PrometheusSettings,
    /// Vulnerability report (for `backend.scanner = "trivy-report"`).
    pub scanner: ScannerSettings,
    /// Where notifications go.
    pub notify: NotifySettings,
    /// The model server's admin endpoint.
    pub server: ServerSettings,
    /// Audit trail location.
    pub audit: AuditSettings,
    /// Guarding a release after promotion (`slipway-rollback watch`).
    #[schemars(with = "serde_json::Value")]
    pub watch: slipway_pipeline::watch::WatchConfig,
}

impl Default for Settings {
    /// Every default, with one departure from the gates' own: provenance is not required until
    /// a team's build job attaches it (`slipway-deploy attest`) and names its key in
    /// `[policy.provenance] keys`; requiring it by default would refuse every image built
    /// before the build job was changed.
    fn default() -> Settings {
        let mut policy = Policy::default();
        policy.signatures.require_provenance = false;
        Settings {
            release: ReleaseSettings::default(),
            model: ModelSettings::default(),
            image: ImageSettings::default(),
            rollout: RolloutSettings::default(),
            analysis: AnalysisPlan::default(),
            policy,
            signing: SigningSettings::default(),
            provenance: ProvenanceSettings::default(),
            backend: BackendSettings::default(),
            mlflow: MlflowSettings::default(),
            registry: RegistrySettings::default(),
            kubernetes: KubernetesSettings::default(),
            prometheus: PrometheusSettings::default(),
            scanner: ScannerSettings::default(),
            notify: NotifySettings::default(),
            server: ServerSettings::default(),
            audit: AuditSettings::default(),
            watch: slipway_pipeline::watch::WatchConfig::default(),
        }
    }
}

/// `[release]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseSettings {
    /// `namespace/deployment`.
    pub name: String,
    /// The Service in front of the Deployment (default: the Deployment's name).
    pub service: Option<String>,
    /// Who runs the release outside GitHub Actions (default: `GITHUB_TRIGGERING_ACTOR`, then
    /// `GITHUB_ACTOR`, then `USER`). Inside Actions the login that triggered the run always is.
    pub actor: Option<String>,
}

impl Default for ReleaseSettings {
    fn default() -> ReleaseSettings {
        ReleaseSettings {
            name: "ml-serving/iris-classifier".to_owned(),
            service: None,
            actor: None,
        }
    }
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// `name@alias`, `name/version`, `name/Stage`, or a bare name with `stage`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Legacy stage for a bare name (`Production`).
    pub stage: Option<String>,
    /// The alias that marks the serving version: the baseline for regression checks, moved to
    /// the new version on promotion.
    pub serving_alias: String,
}

impl Default for ModelSettings {
    fn default() -> ModelSettings {
        ModelSettings {
            reference: "iris-random-forest@candidate".to_owned(),
            stage: None,
            serving_alias: "production".to_owned(),
        }
    }
}

/// `[image]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ImageSettings {
    /// The serving image, by tag or digest.
    #[serde(rename = "ref")]
    pub reference: String,
}

impl Default for ImageSettings {
    fn default() -> ImageSettings {
        ImageSettings {
            reference: "ghcr.io/acme/iris-server:1.5.0".to_owned(),
        }
    }
}

/// `[rollout]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSettings {
    /// `canary`, `blue-green` or `rolling`.
    pub strategy: Strategy,
    /// Canary weights in percent of pods, in order.
    pub steps: Vec<u8>,
    /// Pause after each step before its analysis.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    #[schemars(with = "String")]
    pub pause: Duration,
    /// How long pods may take to become ready (Argo Rollouts' and Flagger's default: 600 s).
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    #[schemars(with = "String")]
    pub progress_deadline: Duration,
    /// Release records kept in the cluster.
    pub history_limit: usize,
    /// What a healthy canary does when the approval gate finds too few approvals: `pause`
    /// (leave it running for `slipway-deploy approve` and `promote` in a later job, the
    /// protected-environment pattern) or `abort`.
    pub on_missing_approval: OnMissingApproval,
    /// How the canary gets its weight: `replica-ratio` (its share of the pods behind the
    /// Service), `nginx` (exactly its share of the requests, through an NGINX canary Ingress
    /// derived from `rollout.ingress`) or `gateway-api` (exactly its share, through weighted
    /// `backendRefs` on the HTTPRoute `rollout.route`).
    pub traffic: TrafficSetting,
    /// With `traffic = "nginx"`: the Ingress that routes to the release's Service.
    pub ingress: Option<String>,
    /// With `traffic = "gateway-api"`: the HTTPRoute that routes to the release's Service.
    pub route: Option<String>,
    /// With `traffic = "replica-ratio"`, a step a single canary pod already exceeds (10 % next
    /// to 4 stable pods is 20 %): `refuse` (stop before any change) or `round-up` (run it with
    /// one pod, told and recorded).
    pub coarse_steps: CoarseStepsSetting,
}

/// `rollout.coarse_steps`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum CoarseStepsSetting {
    /// Stop the release in preflight, naming the requested and achievable shares.
    #[default]
    Refuse,
    /// Run the step with one canary pod; each such step is an event and an audit entry.
    RoundUp,
}

/// `rollout.traffic`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TrafficSetting {
    /// The canary's share of the pods behind the Service.
    #[default]
    ReplicaRatio,
    /// NGINX ingress canary annotations: an exact share of the requests.
    Nginx,
    /// Gateway API HTTPRoute `backendRefs` weights: an exact share of the requests.
    GatewayApi,
}

/// `rollout.on_missing_approval`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum OnMissingApproval {
    /// Keep the canary (blue-green: the standby colour behind the preview Service; rolling:
    /// change nothing yet), record the release as paused, exit 0.
    #[default]
    Pause,
    /// Remove the canary (or standby colour), record the revision as aborted, exit 1.
    Abort,
}

impl Default for RolloutSettings {
    fn default() -> RolloutSettings {
        RolloutSettings {
            strategy: Strategy::Canary,
            steps: vec![10, 25, 50],
            pause: Duration::from_secs(60),
            progress_deadline: Duration::from_secs(600),
            history_limit: 10,
            on_missing_approval: OnMissingApproval::Pause,
            traffic: TrafficSetting::ReplicaRatio,
            ingress: None,
            route: None,
            coarse_steps: CoarseStepsSetting::Refuse,
        }
    }
}

/// `[signing]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SigningSettings {
    /// Sign the image (and attach the model link) before verifying it.
    pub sign: bool,
    /// The signing key: an encrypted `cosign.key`. Unset on the memory registry: the demo key.
    pub key: Option<PathBuf>,
    /// Password of the signing key (`COSIGN_PASSWORD` is also read, as cosign does).
    pub password: Option<Secret>,
    /// Public keys (`cosign.pub`) whose signatures are trusted; the signing key's own public
    /// half is always trusted.
    pub trusted_keys: Vec<PathBuf>,
    /// The Sigstore trusted root for keyless verification (`trusted_root.json`: Fulcio CAs,
    /// Rekor and CT log keys), as `cosign trusted-root create` writes it and sigstore's TUF
    /// repository publishes it: pins one. Read offline, never fetched during a release. Unset:
    /// the root `slipway-audit trusted-root refresh` wrote in the cache directory, else the
    /// built-in public-good root (`slipway_attest::trust_root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<PathBuf>,
}

impl Default for SigningSettings {
    fn default() -> SigningSettings {
        SigningSettings {
            sign: true,
            key: None,
            password: None,
            trusted_keys: Vec::new(),
            trusted_root: None,
        }
    }
}

/// `[provenance]`: facts about the released change that only the build knows. Provenance
/// itself is attached by the build job (`slipway-deploy attest`) and verified with
/// `[policy.provenance] keys`; `run` never writes it (it would describe the deploy job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProvenanceSettings {
    /// When the source commit was made (RFC 3339): DORA's lead time starts here. In GitHub
    /// Actions it defaults to the pushed head commit's time from the event payload.
    pub commit_time: Option<jiff::Timestamp>,
}

/// Which implementation serves a boundary. `memory` is the embedded world of
/// `backend.scenario`: real code with real behaviour, seeded so a release tells a story. It is
/// used only with `--demo` or when listed in `backend.simulated` (real by default).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ModelsBackend {
    /// In memory.
    #[default]
    Memory,
    /// An MLflow tracking server (`[mlflow]`, `MLFLOW_TRACKING_*`).
    Mlflow,
}

/// OCI registry implementation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RegistryBackend {
    /// In memory.
    #[default]
    Memory,
    /// A real registry through the OCI distribution API (`[registry]`, docker credentials).
    Oci,
}

/// Cluster implementation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterBackend {
    /// In memory.
    #[default]
    Memory,
    /// A Kubernetes API server (`[kubernetes]`, kubeconfig as kubectl finds it).
    Kubernetes,
}

/// Metrics implementation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum MetricsBackend {
    /// In memory.
    #[default]
    Memory,
    /// A Prometheus HTTP API (`[prometheus]`).
    Prometheus,
}

/// Vulnerability scan source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ScannerBackend {
    /// In memory.
    #[default]
    Memory,
    /// A Trivy JSON report written by CI (`scanner.report`).
    TrivyReport,
    /// Run `trivy image` from PATH.
    Trivy,
}

/// `[backend]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    /// Model registry implementation.
    pub models: ModelsBackend,
    /// OCI registry implementation.
    pub registry: RegistryBackend,
    /// Cluster implementation.
    pub cluster: ClusterBackend,
    /// Metrics implementation.
    pub metrics: MetricsBackend,
    /// Vulnerability scan source.
    pub scanner: ScannerBackend,
    /// The in-memory world the `memory` backends start from (see `--list-scenarios`).
    pub scenario: String,
    /// Boundaries left in memory on purpose next to real ones (`["metrics"]`). Without
    /// `--demo`, every boundary must be real or listed here; each listed one is named in every
    /// output.
    pub simulated: Vec<Boundary>,
    /// Keep the simulated boundaries in this directory between commands, as `--demo --state`
    /// keeps the whole embedded world: a release paused by one process (a CI job) is
    /// approved and promoted by the next. Only with the cluster and metrics simulated (the
    /// saved world runs on its own simulated clock); real boundaries stay real.
    pub state: Option<PathBuf>,
    /// A test and dry-run facility: the instant (RFC 3339) the saved world's simulated clock
    /// starts at. With it, `backend.state` accepts a real Prometheus (`backend.metrics =
    /// "prometheus"`) that holds history for the simulated instants (a recorded or backfilled
    /// TSDB): every analysis query asks Prometheus about the world's simulated time. A real
    /// cluster is still refused (nothing real can wait on a simulated clock). Without it the
    /// world starts at the scenarios' fixed instant.
    pub state_start: Option<jiff::Timestamp>,
}

/// One external system a release talks to, as `backend.simulated` names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Boundary {
    /// The model registry (`backend.models`).
    Models,
    /// The OCI registry (`backend.registry`).
    Registry,
    /// Kubernetes (`backend.cluster`).
    Cluster,
    /// Metrics (`backend.metrics`).
    Metrics,
    /// The vulnerability scanner (`backend.scanner`).
    Scanner,
}

impl Boundary {
    /// Every boundary, in the order outputs list them.
    pub const ALL: [Boundary; 5] = [
        Boundary::Models,
        Boundary::Registry,
        Boundary::Cluster,
        Boundary::Metrics,
        Boundary::Scanner,
    ];

    /// The key's name (`metrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            Boundary::Models => "models",
            Boundary::Registry => "registry",
            Boundary::Cluster => "cluster",
            Boundary::Metrics => "metrics",
            Boundary::Scanner => "scanner",
        }
    }
}

impl std::fmt::Display for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BackendSettings {
    /// The implementation configured for `boundary` (`memory`, `mlflow`, `kubernetes`, …).
    pub fn implementation(&self, boundary: Boundary) -> &'static str {
        match boundary {
            Boundary::Models => match self.models {
                ModelsBackend::Memory => "memory",
                ModelsBackend::Mlflow => "mlflow",
            },
            Boundary::Registry => match self.registry {
                RegistryBackend::Memory => "memory",
                RegistryBackend::Oci => "oci",
            },
            Boundary::Cluster => match self.cluster {
                ClusterBackend::Memory => "memory",
                ClusterBackend::Kubernetes => "kubernetes",
            },
            Boundary::Metrics => match self.metrics {
                MetricsBackend::Memory => "memory",
                MetricsBackend::Prometheus => "prometheus",
            },
            Boundary::Scanner => match self.scanner {
                ScannerBackend::Memory => "memory",
                ScannerBackend::TrivyReport => "trivy-report",
                ScannerBackend::Trivy => "trivy",
            },
        }
    }

    /// Whether `boundary` is served by the in-memory implementation.
    pub fn is_memory(&self, boundary: Boundary) -> bool {
        self.implementation(boundary) == "memory"
    }
}

impl Default for BackendSettings {
    fn default() -> BackendSettings {
        BackendSettings {
            models: ModelsBackend::Memory,
            registry: RegistryBackend::Memory,
            cluster: ClusterBackend::Memory,
            metrics: MetricsBackend::Memory,
            scanner: ScannerBackend::Memory,
            scenario: "happy".to_owned(),
            simulated: Vec::new(),
            state: None,
            state_start: None,
        }
    }
}

/// `[registry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// Registries (`host:port`) that may be reached over plain HTTP; none by default.
    pub insecure: Vec<String>,
    /// Docker config directory (default: `$DOCKER_CONFIG`, then `~/.docker`).
    pub docker_config: Option<PathBuf>,
}

/// `[kubernetes]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSettings {
    /// Kubeconfig file (default: `KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Context (default: the current one).
    pub context: Option<String>,
    /// Send every write with `dryRun=All`.
    pub dry_run: bool,
}

/// `[prometheus]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSettings {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: Option<String>,
    /// Bearer token.
    pub token: Option<Secret>,
}

/// `[scanner]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScannerSettings {
    /// Trivy JSON report (for `backend.scanner = "trivy-report"`).
    pub report: Option<PathBuf>,
    /// `.trivyignore` / `.trivyignore.yaml` files applied by the scan gate.
    pub ignore_files: Vec<PathBuf>,
}

/// `[server]`: the model server's reload endpoint, called after promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// e.g. `http://iris-classifier.ml-serving.svc:8080/admin/reload`; unset: no reload call.
    pub reload_url: Option<String>,
    /// `secret-name/key` of the admin token in the release's namespace
    /// (default: `<deployment>-admin/admin-token`).
    pub admin_token_secret: Option<String>,
}

/// `[notify]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Slack incoming webhook URL (a secret: it embeds a token); empty means none.
    pub slack_webhook: Option<Secret>,
    /// Generic JSON webhook URL; empty means none.
    pub webhook: Option<Secret>,
}

/// `[mlflow]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MlflowSettings {
    /// Tracking server URL (`MLFLOW_TRACKING_URI` is also read).
    pub tracking_uri: Option<String>,
    /// Bearer token (`MLFLOW_TRACKING_TOKEN` is also read).
    pub token: Option<Secret>,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// JSON Lines trail; none keeps the trail in memory for the run.
    pub path: Option<PathBuf>,
    /// Where the trail lives: `file` (`path`, for dry runs and laptops) or `cluster` (one
    /// immutable ConfigMap per entry in the release's namespace, so every runner sees it).
    pub store: AuditStoreKind,
}

/// `audit.store`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum AuditStoreKind {
    /// The JSON Lines file at `audit.path`.
    #[default]
    File,
    /// ConfigMaps in the release's namespace on the configured cluster backend.
    Cluster,
}

/// Loads the configuration. `overrides` are `(dotted.key, value)` pairs from flags, merged last.
pub fn load(
    global: &GlobalArgs,
    overrides: &[(&str, serde_json::Value)],
) -> Result<Settings, UserError> {
    load_from(global, overrides, Env::prefixed(ENV_PREFIX))
}

fn load_from(
    global: &GlobalArgs,
    overrides: &[(&str, serde_json::Value)],
    env: Env,
) -> Result<Settings, UserError> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = config_file(global)? {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(env.filter(|key| key.as_str().contains("__")).split("__"));
    // The shared flags first (`--release`, `--kubeconfig`, `--context`), then the command's own.
    for (key, value) in global.overrides().iter().chain(overrides) {
        figment = figment.merge(Serialized::default(key, value));
    }
    let mut settings = figment
        .extract::<Settings>()
        .map_err(|err| describe(&err))?;
    if let Some(namespace) = &global.namespace {
        // `-n/--namespace` keeps the Deployment's name; `release_spec` validates the result.
        let name = settings
            .release
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        settings.release.name = format!("{namespace}/{name}");
    }
    Ok(settings)
}

/// The config file `load` reads: `--config`, or `slipway.toml` in the current directory when
/// it exists; `None` with `--no-config` or when there is none.
pub fn config_file(global: &GlobalArgs) -> Result<Option<PathBuf>, UserError> {
    if global.no_config {
        return Ok(None);
    }
    match &global.config {
        Some(path) if path.is_file() => Ok(Some(path.clone())),
        Some(path) => Err(UserError {
            message: format!(
                "config file `{}` not found\n\nhint: check the path, or drop `--config` to use `{DEFAULT_CONFIG_FILE}` from the current directory",
                path.display()
            ),
        }),
        None => {
            Ok(Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| Path::new(path).is_file()))
        }
    }
}

/// One line naming where the bad value came from and which key, then a hint.
fn describe(err: &figment::Error) -> UserError {
    use figment::error::Actual;
    let mut messages = Vec::new();
    let mut quote_hint = false;
    for err in err.clone() {
        let source = match err.metadata.as_ref().and_then(|meta| meta.source.as_ref()) {
            Some(figment::Source::File(path)) => format!("`{}`", path.display()),
            // Flags are merged as serialized values, which figment names by their Rust type.
            _ => match err.metadata.as_ref().map(|meta| meta.name.to_string()) {
                Some(name) if name.contains("serde_json") => "command-line flags".to_owned(),
                Some(name) => name,
                None => "configuration".to_owned(),
            },
        };
        let mut path = err.path.clone();
        if let figment::error::Kind::UnknownField(field, _) = &err.kind
            && path.last() != Some(field)
        {
            path.push(field.clone());
        }
        let key = if path.is_empty() {
            String::new()
        } else {
            format!(" key `{}`:", path.join("."))
        };
        let what = match &err.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                format!(
                    "unknown key `{field}` (known keys here: {})",
                    expected.join(", ")
                )
            }
            // Never the value itself: the key may hold a secret (a numeric password read from
            // the environment is an integer, and figment would print it).
            figment::error::Kind::InvalidType(actual, expected) => {
                if expected.contains("string")
                    && matches!(
                        actual,
                        Actual::Unsigned(_)
                            | Actual::Signed(_)
                            | Actual::Float(_)
                            | Actual::Bool(_)
                    )
                {
                    quote_hint = true;
                }
                format!(
                    "invalid type: found {}, expected {expected}",
                    kind_of(actual)
                )
            }
            figment::error::Kind::InvalidValue(actual, expected) => {
                format!(
                    "invalid value: found {}, expected {expected}",
                    kind_of(actual)
                )
            }
            kind => kind.to_string(),
        };
        messages.push(format!("invalid configuration in {source}:{key} {what}"));
    }
    let mut hint = "see `--print-config` for every key and its current value".to_owned();
    if quote_hint {
        hint.push_str("; a value that looks like a number or a boolean is read as one: to pass it as text, quote it (`SLIPWAY_SIGNING__PASSWORD='\"0123\"'`, or `\"0123\"` in slipway.toml)");
    }
    UserError {
        message: format!("{}\n\nhint: {hint}", messages.join("; ")),
    }
}

/// What kind of value was found, without the value.
fn kind_of(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "an empty value",
        Actual::Option => "an optional value",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        Actual::NewtypeStruct
        | Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant
        | Actual::Other(_) => "a value of another type",
    }
}

/// The configuration a standalone command runs with, or `None` once `--print-config` printed it
/// on stdout (the command then has nothing more to do): the one place the supply-chain
/// commands' `--print-config` is handled.
pub fn load_or_print(global: &GlobalArgs) -> anyhow::Result<Option<Settings>> {
    use std::io::Write as _;
    let settings = load(global, &[])?;
    if global.print_config {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(render(&settings)?.as_bytes())?;
        stdout.flush()?;
        return Ok(None);
    }
    Ok(Some(settings))
}

/// The effective configuration as TOML, secrets redacted.
pub fn render(settings: &Settings) -> Result<String, UserError> {
    toml::to_string_pretty(settings).map_err(|err| UserError {
        message: format!("cannot render configuration: {err}"),
    })
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment's own error"
)]
mod tests {
    use figment::Jail;
    use slipway_k8s_rollout::rollout::{CoarseSteps, TrafficRouting};

    use super::*;

    fn global(config: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            config: config.map(PathBuf::from),
            ..GlobalArgs::default()
        }
    }

    fn error(global: &GlobalArgs) -> String {
        match load(global, &[]) {
            Ok(settings) => panic!("expected an error, got {settings:?}"),
            Err(err) => err.message,
        }
    }

    #[test]
    fn layers_apply_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "slipway.toml",
                "[rollout]\nsteps = [5, 50]\npause = \"30s\"\n[release]\nname = \"ml/from-file\"\n",
            )?;
            jail.set_env("SLIPWAY_RELEASE__NAME", "ml/from-env");
            jail.set_env("SLIPWAY_TEST_MLFLOW", "http://127.0.0.1:1"); // no `__`: ignored
            let settings = load(&global(None), &[]).map_err(|e| e.message)?;
            assert_eq!(settings.rollout.steps, [5, 50]);
            assert_eq!(settings.rollout.pause, Duration::from_secs(30));
            assert_eq!(settings.release.name, "ml/from-env");
            let flagged = load(&global(None), &[("release.name", "ml/from-flag".into())])
                .map_err(|e| e.message)?;
            assert_eq!(flagged.release.name, "ml/from-flag");
            let ignored = load(
                &GlobalArgs {
                    no_config: true,
                    ..GlobalArgs::default()
                },
                &[],
            )
            .map_err(|e| e.message)?;
            assert_eq!(ignored.rollout.steps, [10, 25, 50]);
            Ok(())
        });
    }

    #[test]
    fn bad_config_errors_name_file_and_key() {
        Jail::expect_with(|jail| {
            jail.create_file("unknown.toml", "[rollout]\nstepz = [5]\n")?;
            jail.create_file("wrong-type.toml", "[rollout]\nhistory_limit = \"ten\"\n")?;
            jail.create_file("bad-duration.toml", "[rollout]\npause = \"soon\"\n")?;
            insta::assert_snapshot!("missing_file", error(&global(Some("nope.toml"))));
            insta::assert_snapshot!("unknown_key", error(&global(Some("unknown.toml"))));
            insta::assert_snapshot!("wrong_type", error(&global(Some("wrong-type.toml"))));
            insta::assert_snapshot!("bad_duration", error(&global(Some("bad-duration.toml"))));
            jail.set_env("SLIPWAY_SIGNING__PASSWORD", "0123456");
            let numeric = error(&GlobalArgs {
                no_config: true,
                ..GlobalArgs::default()
            });
            assert!(!numeric.contains("123456"), "{numeric}");
            insta::assert_snapshot!("numeric_secret_env", numeric);
            // Quoted, it is text, leading zero and all.
            jail.set_env("SLIPWAY_SIGNING__PASSWORD", "\"0123456\"");
            let quoted = load(
                &GlobalArgs {
                    no_config: true,
                    ..GlobalArgs::default()
                },
                &[],
            )
            .map_err(|e| e.message)?;
            assert_eq!(
                quoted.signing.password.as_ref().map(Secret::expose),
                Some("0123456")
            );
            jail.set_env("SLIPWAY_SIGNING__PASSWORD", "\"x\"");
            jail.set_env("SLIPWAY_ROLLOUT__HISTORY_LIMIT", "many");
            insta::assert_snapshot!(
                "wrong_type_env",
                error(&GlobalArgs {
                    no_config: true,
                    ..GlobalArgs::default()
                })
            );
            Ok(())
        });
    }

    #[test]
    fn traffic_routing_keys() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "nginx.toml",
                "[rollout]\ntraffic = \"nginx\"\ningress = \"iris-web\"\n",
            )?;
            jail.create_file("no-ingress.toml", "[rollout]\ntraffic = \"nginx\"\n")?;
            jail.create_file("typo.toml", "[rollout]\ntraffic = \"istio\"\n")?;
            jail.create_file(
                "gateway.toml",
                "[rollout]\ntraffic = \"gateway-api\"\nroute = \"iris-route\"\n",
            )?;
            jail.create_file("no-route.toml", "[rollout]\ntraffic = \"gateway-api\"\n")?;
            let defaults = load(&global(None), &[]).map_err(|e| e.message)?;
            let spec =
                crate::release::release_spec(&defaults, None, None).map_err(|e| e.message)?;
            assert_eq!(spec.traffic, TrafficRouting::ReplicaRatio);
            let nginx = load(&global(Some("nginx.toml")), &[]).map_err(|e| e.message)?;
            let spec = crate::release::release_spec(&nginx, None, None).map_err(|e| e.message)?;
            assert_eq!(
                spec.traffic,
                TrafficRouting::NginxIngress {
                    ingress: "iris-web".into()
                }
            );
            let missing = load(&global(Some("no-ingress.toml")), &[]).map_err(|e| e.message)?;
            let err = crate::release::release_spec(&missing, None, None)
                .map(|spec| spec.traffic)
                .expect_err("nginx without an ingress");
            insta::assert_snapshot!("nginx_without_ingress", err.message);
            let gateway = load(&global(Some("gateway.toml")), &[]).map_err(|e| e.message)?;
            let spec = crate::release::release_spec(&gateway, None, None).map_err(|e| e.message)?;
            assert_eq!(
                spec.traffic,
                TrafficRouting::GatewayApi {
                    route: "iris-route".into()
                }
            );
            let missing = load(&global(Some("no-route.toml")), &[]).map_err(|e| e.message)?;
            let err = crate::release::release_spec(&missing, None, None)
                .map(|spec| spec.traffic)
                .expect_err("gateway-api without a route");
            assert!(
                err.message.contains("rollout.route") && err.message.contains("httproutes"),
                "{}",
                err.message
            );
            let typo = error(&global(Some("typo.toml")));
            assert!(typo.contains("rollout.traffic"), "{typo}");
            Ok(())
        });
    }

    #[test]
    fn coarse_steps_key() {
        Jail::expect_with(|jail| {
            jail.create_file("round-up.toml", "[rollout]\ncoarse_steps = \"round-up\"\n")?;
            jail.create_file("typo.toml", "[rollout]\ncoarse_steps = \"round\"\n")?;
            let defaults = load(&global(None), &[]).map_err(|e| e.message)?;
            let spec =
                crate::release::release_spec(&defaults, None, None).map_err(|e| e.message)?;
            assert_eq!(spec.coarse_steps, CoarseSteps::Refuse);
            let round_up = load(&global(Some("round-up.toml")), &[]).map_err(|e| e.message)?;
            let spec =
                crate::release::release_spec(&round_up, None, None).map_err(|e| e.message)?;
            assert_eq!(spec.coarse_steps, CoarseSteps::RoundUp);
            let typo = error(&global(Some("typo.toml")));
            assert!(typo.contains("rollout.coarse_steps"), "{typo}");
            assert!(
                typo.contains("round-up"),
                "the error lists the values: {typo}"
            );
            jail.set_env("SLIPWAY_ROLLOUT__COARSE_STEPS", "round-up");
            let from_env = load(&global(None), &[]).map_err(|e| e.message)?;
            assert_eq!(from_env.rollout.coarse_steps, CoarseStepsSetting::RoundUp);
            Ok(())
        });
    }

    #[test]
    fn secrets_from_env_never_print() {
        Jail::expect_with(|jail| {
            jail.set_env("SLIPWAY_MLFLOW__TOKEN", "mlflow-token-s3cr3t");
            jail.set_env("SLIPWAY_SIGNING__PASSWORD", "cosign-pw-s3cr3t");
            let settings = load(&global(None), &[]).map_err(|e| e.message)?;
            assert_eq!(
                settings.mlflow.token.as_ref().map(Secret::expose),
                Some("mlflow-token-s3cr3t")
            );
            let printed = render(&settings).map_err(|e| e.message)?;
            assert!(!printed.contains("s3cr3t"), "{printed}");
            assert!(printed.contains("token = \"<redacted>\""), "{printed}");
            assert!(!format!("{settings:?}").contains("s3cr3t"));
            Ok(())
        });
    }
}
