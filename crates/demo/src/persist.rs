//! The embedded world kept in a state directory, so that separate processes share it
//! (`slipway-deploy run --demo unapproved --state DIR`, then `approve`, then `promote`).
//!
//! Key design decision: the cluster is write-through, like a real API server. Every call on
//! [`PersistedCluster`] takes an exclusive lock on `DIR/lock`, loads the latest
//! `DIR/cluster.json` into its [`MemoryCluster`], runs the call, and (for a successful write)
//! saves the cluster again by writing a temporary file and renaming it over the old one before
//! the lock is released. So two processes see each other's changes, and a process killed at
//! any moment (even `kill -9`) leaves `DIR` holding every write made before it. Rejected: saving
//! once at exit (a killed process would lose its writes, which is exactly what the crash tests
//! need to observe) and a journal of operations (replaying needs the time of each write).
//!
//! The rest is kept simpler, because nothing reads it concurrently in the flows it serves:
//! the simulated clock's time is saved on every sleep (`DIR/clock.json`); the OCI registry
//! (tags, signatures) and the model registry (aliases, stages, tags) are saved after each of
//! their writes (`DIR/registry.json`, `DIR/models.json`); the metrics and the scanner are seeded
//! again from the scenario by each process (they are data, never written by a release). The
//! trail is `DIR/audit.jsonl` unless the configuration names another ([`trail_path`]).
//!
//! `DIR/world.json` names the scenario and is written last when a world is created, so a
//! directory is either a whole world or not one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slipway_audit_log::{AuditStore, MemoryAuditStore};
use slipway_core::{Clock, Digest, ImageRef, ModelRef, ModelVersion, ReleaseId, ReleaseRecord};
use slipway_core::{Secret, SimClock, Stage};
use slipway_k8s_rollout::{
    AuditCreate, AuditObject, CanaryIngress, Cluster, DeploymentSpec, DeploymentState, Error,
    MemoryCluster, MemoryClusterSnapshot, RollingParams,
};
use slipway_mlflow::{
    MemoryModelRegistry, MemoryModelRegistrySnapshot, MetricPoint, ModelRegistry, RunData,
    VersionInfo,
};
use slipway_pipeline::ReleaseSpec;
use slipway_registry::{
    Artifact, Manifest, MemoryRegistry, MemoryRegistrySnapshot, Registry, Resolved,
};

use crate::scenario::{self, START, World};

/// Test hook: `1` prints one line per successful cluster write on stderr.
pub const TRACE_WRITES_ENV: &str = "SLIPWAY_DEMO_TRACE_WRITES";
/// Test hook: `N` stalls the process forever after its N-th successful cluster write.
pub const STALL_AFTER_WRITE_ENV: &str = "SLIPWAY_DEMO_STALL_AFTER_WRITE";

const WORLD_FILE: &str = "world.json";
const CLUSTER_FILE: &str = "cluster.json";
const CLOCK_FILE: &str = "clock.json";
const REGISTRY_FILE: &str = "registry.json";
const MODELS_FILE: &str = "models.json";
const LOCK_FILE: &str = "lock";
/// The trail's file name in the state directory.
pub const TRAIL_FILE: &str = "audit.jsonl";

/// The test hooks of the embedded world (see the crate docs). Never read by a real backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Print `slipway-demo: cluster write N: <operation> <object>` after each cluster write.
    pub trace_writes: bool,
    /// After this many cluster writes, print `slipway-demo: stalled after cluster write N: …`
    /// and wait forever (an async pending future: signal handlers still run).
    pub stall_after_write: Option<u64>,
}

impl Hooks {
    /// The hooks from [`TRACE_WRITES_ENV`] and [`STALL_AFTER_WRITE_ENV`], read through `env`
    /// (the binaries pass `std::env::var`). A value that is not a number is an error naming it.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Hooks, PersistError> {
        let trace_writes = env(TRACE_WRITES_ENV).is_some_and(|value| value == "1");
        let stall_after_write = match env(STALL_AFTER_WRITE_ENV) {
            None => None,
            Some(value) => Some(value.trim().parse().map_err(|_| PersistError::Hook {
                name: STALL_AFTER_WRITE_ENV,
                value,
            })?),
        };
        Ok(Hooks {
            trace_writes,
            stall_after_write,
        })
    }
}

/// Errors of the state directory. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// A file could not be read, written or locked.
    #[error("cannot {operation} `{}`: {source}\n\nhint: check that the state directory is writable, or pass another `--state DIR`", path.display())]
    Io {
        /// What we were doing.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what this version writes.
    #[error("`{}` is not a state file of the embedded world: {message}\n\nhint: start a new world with another `--state DIR` (or delete this one)", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The directory holds another scenario's world than the one asked for.
    #[error("state directory `{}` holds the `{saved}` world, not `{asked}`\n\nhint: drop the scenario name (`--demo --state {}`) to go on in it, or pass a new `--state DIR`", dir.display(), dir.display())]
    OtherScenario {
        /// The directory.
        dir: PathBuf,
        /// The scenario it holds.
        saved: String,
        /// The scenario asked for.
        asked: String,
    },
    /// The scenario name is unknown.
    #[error(transparent)]
    UnknownScenario(#[from] scenario::UnknownScenario),
    /// A test hook's value is not understood.
    #[error(
        "environment variable `{name}` is `{value}`, not a number of cluster writes\n\nhint: e.g. `{name}=3`, or unset it"
    )]
    Hook {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
}

fn io(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PersistError {
    let path = path.to_owned();
    move |source| PersistError::Io {
        operation,
        path,
        source,
    }
}

/// Whether `dir` holds a saved world.
pub fn holds_world(dir: &Path) -> bool {
    dir.join(WORLD_FILE).is_file()
}

/// The trail of the world in `dir` when the configuration names none.
pub fn trail_path(dir: &Path) -> PathBuf {
    dir.join(TRAIL_FILE)
}

/// What `DIR/world.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorldFile {
    /// The scenario the world was built from.
    scenario: String,
    /// The release it was built around.
    release: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClockFile {
    now: Timestamp,
}

/// Holds `DIR/lock` exclusively until dropped.
struct DirLock(std::fs::File);

impl DirLock {
    fn take(dir: &Path) -> Result<DirLock, PersistError> {
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open the lock file", &path))?;
        file.lock().map_err(io("lock", &path))?;
        Ok(DirLock(file))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first only makes it explicit.
        let _ = self.0.unlock();
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, PersistError> {
    let text = std::fs::read(path).map_err(io("read", path))?;
    serde_json::from_slice(&text).map_err(|err| PersistError::Format {
        path: path.to_owned(),
        message: err.to_string(),
    })
}

/// Writes `value` to `path` through a temporary file and a rename, so a reader (or a process
/// killed half-way) only ever sees the old or the new whole file.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PersistError> {
    let text = serde_json::to_vec(value).map_err(|err| PersistError::Format {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = std::fs::File::create(&temp).map_err(io("create", &temp))?;
    file.write_all(&text).map_err(io("write", &temp))?;
    file.sync_all().map_err(io("sync", &temp))?;
    std::fs::rename(&temp, path).map_err(io("rename into place", path))
}

/// The embedded world opened from (or created in) a state directory.
pub struct Persisted {
    /// The world, its backends wired to the persisted parts.
    pub world: World,
    /// The scenario it was built from.
    pub scenario: String,
    /// True when this call built the world (the directory held none).
    pub created: bool,
}

/// Opens the world in `dir`, or builds the world of `scenario` (default `happy`) there when the
/// directory holds none; a new world's seeded history and approvals go to `audit`. A scenario
/// name that differs from the saved world's is an error; `None` takes the saved one.
pub async fn open_or_create(
    dir: &Path,
    scenario: Option<&str>,
    spec: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
    hooks: Hooks,
) -> Result<Persisted, PersistError> {
    open_or_create_at(dir, scenario, spec, audit, hooks, None).await
}

/// [`open_or_create`], with a new world's simulated clock starting at `start` (default the
/// scenarios' [`START`]): a test points it inside the history a real Prometheus holds, so the
/// analysis asks about instants it has data for. A saved world goes on from its saved time
/// (never earlier than `start`).
pub async fn open_or_create_at(
    dir: &Path,
    scenario: Option<&str>,
    spec: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
    hooks: Hooks,
    start: Option<Timestamp>,
) -> Result<Persisted, PersistError> {
    if let Some(name) = scenario {
        scenario::check_name(name)?;
    }
    std::fs::create_dir_all(dir).map_err(io("create the state directory", dir))?;
    let world_path = dir.join(WORLD_FILE);
    let lock = DirLock::take(dir)?;
    let start: Timestamp = start.unwrap_or_else(|| START.parse().unwrap_or(Timestamp::UNIX_EPOCH));
    let clock = SimClock::starting_at(start);
    let (world, name, created) = if world_path.is_file() {
        let saved: WorldFile = read_json(&world_path)?;
        if let Some(asked) = scenario
            && asked != saved.scenario
        {
            return Err(PersistError::OtherScenario {
                dir: dir.to_owned(),
                saved: saved.scenario,
                asked: asked.to_owned(),
            });
        }
        // The scenario's data (metrics, scan reports) is seeded again; everything a release
        // changes is loaded over it. The seeded trail entries go nowhere: the trail has them.
        let world = scenario::build_on(
            &saved.scenario,
            spec,
            Arc::new(MemoryAuditStore::new()),
            Arc::new(clock.clone()),
        )
        .await?;
        // Building may have moved the clock (the `paused` world runs a release): go on from
        // the saved time, whatever the build did.
        let saved_clock: ClockFile = read_json(&dir.join(CLOCK_FILE))?;
        if let Ok(ahead) = Duration::try_from(saved_clock.now.duration_since(clock.now())) {
            clock.advance(ahead);
        }
        world
            .cluster
            .restore(read_json::<MemoryClusterSnapshot>(&dir.join(CLUSTER_FILE))?);
        world
            .models
            .restore(read_json::<MemoryModelRegistrySnapshot>(
                &dir.join(MODELS_FILE),
            )?);
        (world, saved.scenario, false)
    } else {
        let name = scenario.unwrap_or("happy").to_owned();
        let world = scenario::build_on(&name, spec, audit, Arc::new(clock.clone())).await?;
        write_json(&dir.join(CLUSTER_FILE), &world.cluster.snapshot())?;
        write_json(&dir.join(MODELS_FILE), &world.models.snapshot())?;
        write_json(&dir.join(REGISTRY_FILE), &world.registry.snapshot())?;
        write_json(&dir.join(CLOCK_FILE), &ClockFile { now: clock.now() })?;
        write_json(
            &world_path,
            &WorldFile {
                scenario: name.clone(),
                release: spec.release.to_string(),
            },
        )?;
        (world, name, true)
    };
    if !created {
        world.registry.restore(read_json::<MemoryRegistrySnapshot>(
            &dir.join(REGISTRY_FILE),
        )?);
    }
    drop(lock);

    let mut world = world;
    let dir = dir.to_owned();
    world.backends.cluster = Arc::new(PersistedCluster {
        inner: world.cluster.clone(),
        dir: dir.clone(),
        hooks,
        writes: AtomicU64::new(0),
    });
    world.backends.clock = Arc::new(PersistedClock {
        inner: clock,
        dir: dir.clone(),
    });
    world.backends.registry = Arc::new(PersistedRegistry {
        inner: world.registry.clone(),
        dir: dir.clone(),
    });
    world.backends.models = Arc::new(PersistedModels {
        inner: world.models.clone(),
        dir,
    });
    Ok(Persisted {
        world,
        scenario: name,
        created,
    })
}

/// A saved world as a test reads it after the processes that changed it ended (or were
/// killed): the cluster as the last write left it, on a clock at the saved time.
pub struct Inspected {
    /// The scenario.
    pub scenario: String,
    /// The cluster, restored from `DIR/cluster.json` (a copy: changing it changes nothing on
    /// disk).
    pub cluster: Arc<MemoryCluster>,
    /// The simulated time the world had reached.
    pub now: Timestamp,
    /// `DIR/audit.jsonl` (the trail, unless the configuration named another).
    pub trail: PathBuf,
}

/// Reads the world saved in `dir`, for tests (see [`Inspected`]).
pub fn open(dir: &Path) -> Result<Inspected, PersistError> {
    let _lock = DirLock::take(dir)?;
    let saved: WorldFile = read_json(&dir.join(WORLD_FILE))?;
    let now = read_json::<ClockFile>(&dir.join(CLOCK_FILE))?.now;
    let cluster = Arc::new(MemoryCluster::new(Arc::new(SimClock::starting_at(now))));
    cluster.restore(read_json(&dir.join(CLUSTER_FILE))?);
    Ok(Inspected {
        scenario: saved.scenario,
        cluster,
        now,
        trail: trail_path(dir),
    })
}

/// Moves the saved world's simulated clock forward by `duration`, as a person waiting would:
/// for instance until the lease of a runner that was killed has expired, which is what lets the
/// next command take the release's lock (a real cluster's Lease expires the same way). Returns
/// the new time.
pub fn let_time_pass(dir: &Path, duration: Duration) -> Result<Timestamp, PersistError> {
    let _lock = DirLock::take(dir)?;
    let path = dir.join(CLOCK_FILE);
    let saved: ClockFile = read_json(&path)?;
    let clock = SimClock::starting_at(saved.now);
    clock.advance(duration);
    let now = clock.now();
    write_json(&path, &ClockFile { now })?;
    Ok(now)
}

/// A [`Cluster`] kept in a state directory, write-through (see the module docs).
pub struct PersistedCluster {
    inner: Arc<MemoryCluster>,
    dir: PathBuf,
    hooks: Hooks,
    writes: AtomicU64,
}

impl std::fmt::Debug for PersistedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedCluster")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn state_error(operation: &str, err: PersistError) -> Error {
    Error::Api {
        operation: operation.to_owned(),
        message: err.to_string(),
    }
}

impl PersistedCluster {
    /// Runs `call` on the latest saved state under the directory lock; `write` names a write
    /// (`<operation> <object>`), saved before the lock is released when it succeeds.
    async fn call<T>(
        &self,
        write: Option<String>,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let what = write.as_deref().unwrap_or("read the cluster");
        let result = {
            let _lock = DirLock::take(&self.dir).map_err(|err| state_error(what, err))?;
            let path = self.dir.join(CLUSTER_FILE);
            let snapshot = read_json(&path).map_err(|err| state_error(what, err))?;
            self.inner.restore(snapshot);
            let result = call.await;
            if result.is_ok() && write.is_some() {
                write_json(&path, &self.inner.snapshot()).map_err(|err| state_error(what, err))?;
            }
            result
        };
        if let (Ok(_), Some(write)) = (&result, &write) {
            self.after_write(write).await;
        }
        result
    }

    /// The test hooks, after a write is saved and the lock released.
    #[allow(
        clippy::print_stderr,
        reason = "test hooks of the embedded world: the tests read these lines on stderr"
    )]
    async fn after_write(&self, write: &str) {
        let count = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hooks.trace_writes {
            eprintln!("slipway-demo: cluster write {count}: {write}");
        }
        if self.hooks.stall_after_write == Some(count) {
            eprintln!("slipway-demo: stalled after cluster write {count}: {write}");
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait::async_trait]
impl Cluster for PersistedCluster {
    async fn deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DeploymentState>, Error> {
        self.call(None, self.inner.deployment(namespace, name))
            .await
    }

    async fn ownership(
        &self,
        kind: slipway_k8s_rollout::ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Result<slipway_k8s_rollout::Ownership, Error> {
        self.call(None, self.inner.ownership(kind, namespace, name))
            .await
    }

    async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), Error> {
        let what = format!("apply Deployment {}/{}", spec.namespace, spec.name);
        self.call(Some(what), self.inner.apply_deployment(spec))
            .await
    }

    async fn derive_deployment(&self, source: &str, spec: &DeploymentSpec) -> Result<(), Error> {
        let what = format!("derive Deployment {}/{}", spec.namespace, spec.name);
        self.call(Some(what), self.inner.derive_deployment(source, spec))
            .await
    }

    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let what = format!("delete Deployment {namespace}/{name}");
        self.call(Some(what), self.inner.delete_deployment(namespace, name))
            .await
    }

    async fn rolling_update(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        params: &RollingParams,
    ) -> Result<(), Error> {
        let what = format!("rolling-update Deployment {namespace}/{name}");
        self.call(
            Some(what),
            self.inner.rolling_update(namespace, name, image, params),
        )
        .await
    }

    async fn service_selector(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, Error> {
        self.call(None, self.inner.service_selector(namespace, name))
            .await
    }

    async fn set_service_selector(
        &self,
        namespace: &str,
        name: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let what = format!("set-selector Service {namespace}/{name}");
        self.call(
            Some(what),
            self.inner.set_service_selector(namespace, name, selector),
        )
        .await
    }

    async fn copy_service(
        &self,
        namespace: &str,
        source: &str,
        name: &str,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let what = format!("apply Service {namespace}/{name}");
        self.call(
            Some(what),
            self.inner.copy_service(namespace, source, name, selector),
        )
        .await
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let what = format!("delete Service {namespace}/{name}");
        self.call(Some(what), self.inner.delete_service(namespace, name))
            .await
    }

    async fn apply_canary_ingress(&self, ingress: &CanaryIngress) -> Result<(), Error> {
        let what = format!("apply Ingress {}/{}", ingress.namespace, ingress.name);
        self.call(Some(what), self.inner.apply_canary_ingress(ingress))
            .await
    }

    async fn http_route(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<slipway_k8s_rollout::gateway::HttpRoute>, Error> {
        self.call(None, self.inner.http_route(namespace, name))
            .await
    }

    async fn apply_http_route(
        &self,
        route: &slipway_k8s_rollout::gateway::HttpRoute,
    ) -> Result<(), Error> {
        let what = format!("apply HTTPRoute {}/{}", route.namespace, route.name);
        self.call(Some(what), self.inner.apply_http_route(route))
            .await
    }

    async fn delete_canary_ingress(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let what = format!("delete Ingress {namespace}/{name}");
        self.call(
            Some(what),
            self.inner.delete_canary_ingress(namespace, name),
        )
        .await
    }

    async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, Error> {
        self.call(None, self.inner.read_secret(namespace, name, key))
            .await
    }

    async fn emit_event(
        &self,
        namespace: &str,
        deployment: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let what = format!("create Event {namespace}/{deployment} {reason}");
        self.call(
            Some(what),
            self.inner
                .emit_event(namespace, deployment, reason, message),
        )
        .await
    }

    async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, Error> {
        self.call(None, self.inner.release_history(release)).await
    }

    async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), Error> {
        let what = format!(
            "record release {} revision {} {:?}",
            record.release, record.revision, record.outcome
        );
        self.call(Some(what), self.inner.record_release(record, limit))
            .await
    }

    async fn lock_holder(
        &self,
        release: &ReleaseId,
    ) -> Result<Option<slipway_k8s_rollout::LockHolder>, Error> {
        self.call(None, Cluster::lock_holder(self.inner.as_ref(), release))
            .await
    }

    async fn acquire_lock(
        &self,
        release: &ReleaseId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let what = format!("acquire Lease {release} for {holder}");
        self.call(Some(what), self.inner.acquire_lock(release, holder, ttl))
            .await
    }

    async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), Error> {
        let what = format!("release Lease {release} of {holder}");
        self.call(Some(what), self.inner.release_lock(release, holder))
            .await
    }

    async fn audit_objects(&self, namespace: &str, trail: &str) -> Result<Vec<AuditObject>, Error> {
        self.call(None, self.inner.audit_objects(namespace, trail))
            .await
    }

    async fn create_audit_object(
        &self,
        namespace: &str,
        trail: &str,
        object: &AuditObject,
    ) -> Result<AuditCreate, Error> {
        let what = format!("create ConfigMap {namespace}/{}", object.name);
        self.call(
            Some(what),
            self.inner.create_audit_object(namespace, trail, object),
        )
        .await
    }
}

/// Simulated time that goes on where the previous process left it: saved on every sleep.
struct PersistedClock {
    inner: SimClock,
    dir: PathBuf,
}

#[async_trait::async_trait]
impl Clock for PersistedClock {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    async fn sleep(&self, duration: Duration) {
        self.inner.advance(duration);
        // A clock cannot fail; a time not saved only makes the next process start earlier.
        if let Ok(_lock) = DirLock::take(&self.dir) {
            let _ = write_json(
                &self.dir.join(CLOCK_FILE),
                &ClockFile {
                    now: self.inner.now(),
                },
            );
        }
    }
}

/// The memory registry, saved after each write (tags, signatures).
struct PersistedRegistry {
    inner: Arc<MemoryRegistry>,
    dir: PathBuf,
}

impl PersistedRegistry {
    fn save(
        &self,
        operation: &'static str,
        image: &ImageRef,
    ) -> Result<(), slipway_registry::Error> {
        let saved = DirLock::take(&self.dir)
            .and_then(|_lock| write_json(&self.dir.join(REGISTRY_FILE), &self.inner.snapshot()));
        saved.map_err(|err| slipway_registry::Error::Unavailable {
            operation,
            image: image.to_string(),
            message: err.to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Registry for PersistedRegistry {
    async fn resolve(&self, image: &ImageRef) -> Result<Resolved, slipway_registry::Error> {
        self.inner.resolve(image).await
    }

    async fn exists(&self, image: &ImageRef) -> Result<bool, slipway_registry::Error> {
        self.inner.exists(image).await
    }

    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>, slipway_registry::Error> {
        self.inner.list_tags(image).await
    }

    async fn get_manifest(&self, image: &ImageRef) -> Result<Manifest, slipway_registry::Error> {
        self.inner.get_manifest(image).await
    }

    async fn get_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<Vec<u8>, slipway_registry::Error> {
        self.inner.get_blob(image, digest).await
    }

    async fn get_artifact(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<Artifact>, slipway_registry::Error> {
        self.inner.get_artifact(image, tag).await
    }

    async fn put_artifact(
        &self,
        image: &ImageRef,
        tag: &str,
        artifact: &Artifact,
    ) -> Result<Digest, slipway_registry::Error> {
        let digest = self.inner.put_artifact(image, tag, artifact).await?;
        self.save("save the pushed artifact", image)?;
        Ok(digest)
    }

    async fn tag(&self, image: &ImageRef, tag: &str) -> Result<(), slipway_registry::Error> {
        self.inner.tag(image, tag).await?;
        self.save("save the tag", image)
    }
}

/// The memory model registry, saved after each write (aliases, stages, tags).
struct PersistedModels {
    inner: Arc<MemoryModelRegistry>,
    dir: PathBuf,
}

impl PersistedModels {
    fn save(&self, operation: String) -> Result<(), slipway_mlflow::Error> {
        let saved = DirLock::take(&self.dir)
            .and_then(|_lock| write_json(&self.dir.join(MODELS_FILE), &self.inner.snapshot()));
        saved.map_err(|err| slipway_mlflow::Error::Unavailable {
            operation,
            message: err.to_string(),
            hint: String::new(),
        })
    }
}

#[async_trait::async_trait]
impl ModelRegistry for PersistedModels {
    async fn resolve(&self, model: &ModelRef) -> Result<VersionInfo, slipway_mlflow::Error> {
        self.inner.resolve(model).await
    }

    async fn run_data(&self, run_id: &str) -> Result<RunData, slipway_mlflow::Error> {
        self.inner.run_data(run_id).await
    }

    async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
    ) -> Result<Vec<MetricPoint>, slipway_mlflow::Error> {
        self.inner.metric_history(run_id, key).await
    }

    async fn set_alias(
        &self,
        version: &ModelVersion,
        alias: &str,
    ) -> Result<(), slipway_mlflow::Error> {
        self.inner.set_alias(version, alias).await?;
        self.save(format!("save alias `{alias}` of {version}"))
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), slipway_mlflow::Error> {
        self.inner.delete_alias(name, alias).await?;
        self.save(format!("save the removal of alias `{alias}` of {name}"))
    }

    async fn set_version_tag(
        &self,
        version: &ModelVersion,
        key: &str,
        value: &str,
    ) -> Result<(), slipway_mlflow::Error> {
        self.inner.set_version_tag(version, key, value).await?;
        self.save(format!("save tag `{key}` of {version}"))
    }

    async fn delete_version_tag(
        &self,
        version: &ModelVersion,
        key: &str,
    ) -> Result<(), slipway_mlflow::Error> {
        self.inner.delete_version_tag(version, key).await?;
        self.save(format!("save the removal of tag `{key}` of {version}"))
    }

    async fn transition_stage(
        &self,
        version: &ModelVersion,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<(), slipway_mlflow::Error> {
        self.inner
            .transition_stage(version, stage, archive_existing)
            .await?;
        self.save(format!("save the stage of {version}"))
    }
}
