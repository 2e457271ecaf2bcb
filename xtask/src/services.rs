//! `cargo xtask services`: real local services for the end-to-end tests.
//!
//! Starts a CNCF distribution OCI registry (Debian `docker-registry`), Prometheus and an
//! MLflow tracking server, each on a free 127.0.0.1 port, with all state (configs, data,
//! logs, PID and port files) under `target/services/<name>/`. See
//! `shared/notes/real-services.md` for why these and how each one behaves.
//!
//! Design decisions:
//! - Real servers, not mocks: our clients are checked against the behaviour that users hit.
//! - `start` is idempotent: a service whose PID is alive and which answers its readiness
//!   probe is reused, so a developer can run it before every `cargo test`. MLflow takes
//!   7-10 s to come up, which is worth not paying twice.
//! - Each service is its own process group leader, so `stop` signals the whole group
//!   (MLflow forks a uvicorn worker) and so Ctrl-C in the terminal that ran `start` does not
//!   kill the services it left running.
//! - A PID is only signalled if its command line mentions our state directory, so a stale
//!   PID file cannot make us kill an unrelated process that reused the PID.
//! - MLflow is seeded once with a fixture model by `xtask/seed/mlflow_seed.py`, which uses
//!   MLflow's own Python client so tests read what MLflow itself writes. A marker next to the
//!   database (`target/services/mlflow/data/`) records it, so deleting the data re-seeds, and a
//!   lock file keeps two concurrent `start`s from seeding twice.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Context as _, Result, bail};

use crate::process::{self, free_port, http_get_status, is_alive, kill_group, run_to_stderr};

/// `host:port` of the OCI registry (plain HTTP), e.g. `127.0.0.1:41234`.
pub(crate) const REGISTRY_ENV: &str = "SLIPWAY_TEST_REGISTRY";
/// Base URL of Prometheus, e.g. `http://127.0.0.1:41235`.
pub(crate) const PROMETHEUS_ENV: &str = "SLIPWAY_TEST_PROMETHEUS";
/// Base URL of the MLflow tracking server, e.g. `http://127.0.0.1:41236`.
pub(crate) const MLFLOW_ENV: &str = "SLIPWAY_TEST_MLFLOW";
/// Name of the registered model `xtask/seed/mlflow_seed.py` created on that server.
pub(crate) const MLFLOW_SEEDED_ENV: &str = "SLIPWAY_TEST_MLFLOW_SEEDED";

/// The fixture model the seed script creates (see its docstring for the whole world).
const MLFLOW_SEEDED_MODEL: &str = "iris-random-forest";
/// How long a `start` waits for a concurrent `start` that holds the seed lock.
const SEED_LOCK_WAIT: Duration = Duration::from_secs(180);

const MLFLOW_VERSION: &str = "3.17.2";

/// Debian packages that provide the binaries we run (skopeo is for tests that push images,
/// buildah for the test that builds Slipway's own image with `cargo xtask image`).
const APT_PACKAGES: [(&str, &str); 4] = [
    ("docker-registry", "docker-registry"),
    ("prometheus", "prometheus"),
    ("skopeo", "skopeo"),
    ("buildah", "buildah"),
];

/// How long a stopped service gets to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Registry,
    Prometheus,
    Mlflow,
}

impl Service {
    const ALL: [Self; 3] = [Self::Registry, Self::Prometheus, Self::Mlflow];

    fn name(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Prometheus => "prometheus",
            Self::Mlflow => "mlflow",
        }
    }

    fn ready_path(self) -> &'static str {
        match self {
            Self::Registry => "/v2/",
            Self::Prometheus => "/-/ready",
            Self::Mlflow => "/health",
        }
    }

    /// Generous: a cold MLflow start also creates and migrates its sqlite database.
    fn ready_timeout(self) -> Duration {
        match self {
            Self::Registry | Self::Prometheus => Duration::from_secs(30),
            Self::Mlflow => Duration::from_secs(120),
        }
    }

    fn env_value(self, port: u16) -> String {
        match self {
            Self::Registry => format!("127.0.0.1:{port}"),
            Self::Prometheus | Self::Mlflow => format!("http://127.0.0.1:{port}"),
        }
    }

    fn env_name(self) -> &'static str {
        match self {
            Self::Registry => REGISTRY_ENV,
            Self::Prometheus => PROMETHEUS_ENV,
            Self::Mlflow => MLFLOW_ENV,
        }
    }
}

/// Where a service keeps its state: `target/services/<name>/`.
struct Paths {
    dir: PathBuf,
    pid: PathBuf,
    port: PathBuf,
    log: PathBuf,
}

impl Paths {
    fn new(state: &Path, service: Service) -> Self {
        let dir = state.join(service.name());
        Self {
            pid: dir.join("pid"),
            port: dir.join("port"),
            log: dir.join("log"),
            dir,
        }
    }
}

/// The addresses of running services, as the `SLIPWAY_TEST_*` variables tests read.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub(crate) vars: Vec<(&'static str, String)>,
}

impl Env {
    /// `export NAME=value` lines for `eval "$(cargo xtask services)"`.
    pub(crate) fn export_lines(&self) -> String {
        let mut lines = String::new();
        for (name, value) in &self.vars {
            // Values are loopback addresses we built: nothing to shell-quote.
            let _ = writeln!(lines, "export {name}={value}");
        }
        lines
    }
}

pub(crate) fn state_dir(root: &Path) -> PathBuf {
    root.join("target").join("services")
}

/// A service we spawned and are waiting on.
struct Starting {
    service: Service,
    port: u16,
    child: Child,
}

/// Starts every service that is not already running and ready; returns their addresses.
pub(crate) fn start(root: &Path) -> Result<Env> {
    let state = state_dir(root);
    fs::create_dir_all(&state)
        .with_context(|| format!("failed to create `{}`", state.display()))?;

    let mut ports = Vec::new();
    let mut to_start = Vec::new();
    for service in Service::ALL {
        match running(&state, service) {
            Some((pid, port)) if http_get_status(port, service.ready_path()) == Some(200) => {
                eprintln!(
                    "services: reusing {} (pid {pid}, port {port})",
                    service.name()
                );
                ports.push((service, port));
            }
            Some((pid, _)) => {
                eprintln!(
                    "services: {} (pid {pid}) is running but not ready; restarting it",
                    service.name()
                );
                stop_pids(&state, &[(service, pid)]);
                to_start.push(service);
            }
            None => to_start.push(service),
        }
    }

    // Also when every service is reused: a tool the tests need (buildah) may be new.
    install_missing_packages(&APT_PACKAGES)?;
    if !to_start.is_empty() {
        if to_start.contains(&Service::Mlflow) {
            ensure_mlflow_venv(&state)?;
        }
        let mut starting = Vec::new();
        for service in to_start {
            match spawn(&state, service) {
                Ok(spawned) => starting.push(spawned),
                Err(err) => {
                    stop_started(&state, &mut starting);
                    return Err(err);
                }
            }
        }
        wait_ready(&state, &mut starting)?;
        ports.extend(
            starting
                .iter()
                .map(|spawned| (spawned.service, spawned.port)),
        );
    }

    // Write the addresses before seeding: if seeding fails, the registry and Prometheus tests
    // can still run.
    write_env(&state, &env_from_ports(&ports, false))?;
    let seeded = match ports
        .iter()
        .find(|(service, _)| *service == Service::Mlflow)
    {
        Some((_, port)) => {
            seed_mlflow(root, &state, *port)?;
            true
        }
        None => false,
    };
    let env = env_from_ports(&ports, seeded);
    write_env(&state, &env)?;
    Ok(env)
}

fn write_env(state: &Path, env: &Env) -> Result<()> {
    write(&state.join("env"), &env.export_lines())
}

/// Where the seed summary is kept: next to MLflow's database, so both go together.
fn seed_marker(state: &Path) -> PathBuf {
    Paths::new(state, Service::Mlflow)
        .dir
        .join("data")
        .join(format!("seeded-{MLFLOW_SEEDED_MODEL}.json"))
}

/// Runs `xtask/seed/mlflow_seed.py` against MLflow on `port` unless the marker says it ran.
fn seed_mlflow(root: &Path, state: &Path, port: u16) -> Result<()> {
    let marker = seed_marker(state);
    if marker.exists() {
        return Ok(());
    }
    let lock = marker.with_extension("lock");
    let begin = Instant::now();
    // `create_new` is atomic: whoever creates the lock seeds; the others wait for the marker.
    while fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
        .is_err()
    {
        if marker.exists() {
            return Ok(());
        }
        if begin.elapsed() > SEED_LOCK_WAIT {
            bail!(
                "another `cargo xtask services start` has been seeding MLflow for over {}s (lock `{}`)\n\nhint: if no other start is running, delete the lock and run `cargo xtask services start` again",
                SEED_LOCK_WAIT.as_secs(),
                lock.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The holder we waited for may have finished between our first look and taking the lock.
    let seeded = if marker.exists() {
        Ok(())
    } else {
        run_seed(root, state, port, &marker)
    };
    let _ = fs::remove_file(&lock);
    seeded
}

fn run_seed(root: &Path, state: &Path, port: u16, marker: &Path) -> Result<()> {
    let script = root.join("xtask").join("seed").join("mlflow_seed.py");
    let python = state.join("venv").join("bin").join("python");
    let log_path = Paths::new(state, Service::Mlflow).dir.join("seed.log");
    let log = fs::File::create(&log_path)
        .with_context(|| format!("failed to create `{}`", log_path.display()))?;
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .args(["--model", MLFLOW_SEEDED_MODEL])
        .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
        // A proxy from the environment must not intercept loopback calls.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stderr(log);
    let line = process::display(&command);
    eprintln!(
        "services: seeding MLflow with `{MLFLOW_SEEDED_MODEL}` (log `{}`)",
        log_path.display()
    );
    let begin = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    if !output.status.success() {
        bail!(
            "seeding MLflow failed: `{line}` exited with {}\n\nlog: {}\n{}",
            output.status,
            log_path.display(),
            log_tail(&log_path, 20)
        );
    }
    // The summary (run ids, versions) is the marker's content, for a developer to read.
    fs::write(marker, &output.stdout)
        .with_context(|| format!("failed to write `{}`", marker.display()))?;
    eprintln!(
        "services: seeded MLflow in {:.1}s (summary `{}`)",
        begin.elapsed().as_secs_f64(),
        marker.display()
    );
    Ok(())
}

/// Stops every service recorded in the state directory.
pub(crate) fn stop(root: &Path) -> Result<()> {
    let state = state_dir(root);
    let mut pids = Vec::new();
    for service in Service::ALL {
        match running(&state, service) {
            Some((pid, _)) => pids.push((service, pid)),
            None => remove_run_files(&state, service),
        }
    }
    if pids.is_empty() {
        eprintln!("services: nothing running");
    }
    stop_pids(&state, &pids);
    let _ = fs::remove_file(state.join("env"));
    // Report what refused to die rather than pretend.
    let survivors: Vec<String> = pids
        .iter()
        .filter(|(_, pid)| is_alive(*pid))
        .map(|(service, pid)| format!("{} (pid {pid})", service.name()))
        .collect();
    if !survivors.is_empty() {
        bail!("failed to stop {} even with SIGKILL", survivors.join(", "));
    }
    Ok(())
}

/// The addresses of the running services, failing if any is not running.
pub(crate) fn env(root: &Path) -> Result<Env> {
    let state = state_dir(root);
    let mut ports = Vec::new();
    for service in Service::ALL {
        match running(&state, service) {
            Some((_, port)) => ports.push((service, port)),
            None => bail!(
                "{} is not running\n\nhint: start the services with `cargo xtask services start`",
                service.name()
            ),
        }
    }
    Ok(env_from_ports(&ports, seed_marker(&state).exists()))
}

/// The variables for `ports`; with `mlflow_seeded`, also the seeded model's name.
fn env_from_ports(ports: &[(Service, u16)], mlflow_seeded: bool) -> Env {
    // Always in Service::ALL order, whichever were reused.
    let mut vars: Vec<(&'static str, String)> = Service::ALL
        .iter()
        .filter_map(|service| {
            ports
                .iter()
                .find(|(candidate, _)| candidate == service)
                .map(|(_, port)| (service.env_name(), service.env_value(*port)))
        })
        .collect();
    if mlflow_seeded && ports.iter().any(|(service, _)| *service == Service::Mlflow) {
        vars.push((MLFLOW_SEEDED_ENV, MLFLOW_SEEDED_MODEL.to_owned()));
    }
    Env { vars }
}

/// The PID and port of `service` if its PID file names a live process of ours.
fn running(state: &Path, service: Service) -> Option<(u32, u16)> {
    let paths = Paths::new(state, service);
    let pid: u32 = fs::read_to_string(&paths.pid).ok()?.trim().parse().ok()?;
    let port: u16 = fs::read_to_string(&paths.port).ok()?.trim().parse().ok()?;
    is_ours(state, service, pid).then_some((pid, port))
}

/// Whether `pid` is alive and its command line points into our state directory.
fn is_ours(state: &Path, service: Service, pid: u32) -> bool {
    let dir = Paths::new(state, service).dir;
    is_alive(pid)
        && process::cmdline(pid).is_some_and(|cmdline| cmdline.contains(&*dir.to_string_lossy()))
}

fn remove_run_files(state: &Path, service: Service) {
    let paths = Paths::new(state, service);
    let _ = fs::remove_file(paths.pid);
    let _ = fs::remove_file(paths.port);
}

/// SIGTERM to each group, wait up to [`STOP_GRACE`], then SIGKILL what is left.
fn stop_pids(state: &Path, pids: &[(Service, u32)]) {
    for (service, pid) in pids {
        eprintln!("services: stopping {} (pid {pid})", service.name());
        if let Err(err) = kill_group(*pid, "TERM") {
            eprintln!("services: {err:#}");
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && pids.iter().any(|(_, pid)| is_alive(*pid)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (service, pid) in pids {
        if is_alive(*pid) {
            eprintln!(
                "services: {} (pid {pid}) ignored SIGTERM for {}s; sending SIGKILL",
                service.name(),
                STOP_GRACE.as_secs()
            );
            let _ = kill_group(*pid, "KILL");
            std::thread::sleep(Duration::from_millis(500));
        }
        if !is_alive(*pid) {
            remove_run_files(state, *service);
        }
    }
}

/// Stops services this run spawned, after a failure, so none are left half-started.
fn stop_started(state: &Path, starting: &mut [Starting]) {
    let pids: Vec<(Service, u32)> = starting
        .iter()
        .map(|spawned| (spawned.service, spawned.child.id()))
        .collect();
    stop_pids(state, &pids);
    for spawned in starting {
        let _ = spawned.child.wait();
    }
}

/// Installs with apt-get the `(binary, package)` pairs whose binary is not on `PATH`.
pub(crate) fn install_missing_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(binary, _)| !process::on_path(binary))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let manual = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !process::on_path("apt-get") {
        bail!(
            "missing {} and there is no apt-get to install them\n\nhint: install them with your package manager (Debian: `{manual}`)",
            missing.join(", ")
        );
    }
    // apt-get needs root: use sudo when we are not root and it exists.
    let sudo = if is_root() {
        None
    } else if process::on_path("sudo") {
        Some("sudo")
    } else {
        bail!(
            "missing {} and not root to install them\n\nhint: as root, run `apt-get update && {manual}`",
            missing.join(", ")
        );
    };
    let apt = |args: &[&str]| -> Result<()> {
        let mut command = match sudo {
            Some(sudo) => {
                let mut command = Command::new(sudo);
                command.arg("apt-get");
                command
            }
            None => Command::new("apt-get"),
        };
        command
            // Wait for, rather than fail on, another apt or dpkg run (a colleague's
            // install, unattended-upgrades) holding the lock.
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        run_to_stderr(&mut command)
    };
    eprintln!("services: installing {}", missing.join(", "));
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}

fn is_root() -> bool {
    // Avoids a libc dependency for geteuid(): /proc/self/status has "Uid: real effective ...".
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Creates `target/services/venv` with MLflow, once; later runs reuse it (~105 s cold).
fn ensure_mlflow_venv(state: &Path) -> Result<()> {
    let venv = state.join("venv");
    let marker = venv.join(format!("slipway-mlflow-{MLFLOW_VERSION}.installed"));
    if marker.exists() && venv.join("bin").join("mlflow").exists() {
        return Ok(());
    }
    let python = if process::on_path("python3") {
        "python3"
    } else {
        bail!(
            "python3 is needed to install MLflow {MLFLOW_VERSION}\n\nhint: apt-get install -y python3-venv"
        );
    };
    eprintln!(
        "services: installing MLflow {MLFLOW_VERSION} into `{}` (about 2 minutes, once)",
        venv.display()
    );
    run_to_stderr(Command::new(python).arg("-m").arg("venv").arg(&venv))?;
    run_to_stderr(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        &format!("mlflow=={MLFLOW_VERSION}"),
    ]))?;
    fs::write(&marker, "").with_context(|| format!("failed to write `{}`", marker.display()))
}

fn spawn(state: &Path, service: Service) -> Result<Starting> {
    let paths = Paths::new(state, service);
    let data = paths.dir.join("data");
    fs::create_dir_all(&data).with_context(|| format!("failed to create `{}`", data.display()))?;
    let port = free_port()?;
    let mut command = match service {
        Service::Registry => {
            let config = paths.dir.join("config.yml");
            write(&config, &registry_config(&data, port))?;
            let mut command = Command::new("docker-registry");
            command.arg("serve").arg(&config);
            command
        }
        Service::Prometheus => {
            let config = paths.dir.join("prometheus.yml");
            write(&config, PROMETHEUS_CONFIG)?;
            let mut command = Command::new("prometheus");
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-lifecycle");
            command
        }
        Service::Mlflow => {
            let artifacts = data.join("artifacts");
            let mut command = Command::new(state.join("venv").join("bin").join("mlflow"));
            command
                // Otherwise MLflow 3.17 also starts 7 job-runner processes (~1.3 GB).
                .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
                .arg("server")
                .arg("--backend-store-uri")
                .arg(format!("sqlite:///{}", data.join("mlflow.db").display()))
                .arg("--default-artifact-root")
                .arg(&artifacts)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--workers", "1"]);
            command
        }
    };
    let log = fs::File::create(&paths.log)
        .with_context(|| format!("failed to create `{}`", paths.log.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("failed to reopen `{}`", paths.log.display()))?;
    let line = process::display(&command);
    let child = command
        .current_dir(&paths.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to spawn {} (`{line}`)", service.name()))?;
    eprintln!(
        "services: started {} (pid {}, port {port}, log `{}`)",
        service.name(),
        child.id(),
        paths.log.display()
    );
    write(&paths.pid, &format!("{}\n", child.id()))?;
    write(&paths.port, &format!("{port}\n"))?;
    Ok(Starting {
        service,
        port,
        child,
    })
}

/// Polls every spawned service until each answers 200 or one fails.
fn wait_ready(state: &Path, starting: &mut [Starting]) -> Result<()> {
    let begin = Instant::now();
    let mut pending: Vec<usize> = (0..starting.len()).collect();
    while !pending.is_empty() {
        let mut failure = None;
        pending.retain(|&index| {
            let spawned = &mut starting[index];
            let service = spawned.service;
            let url = format!("http://127.0.0.1:{}{}", spawned.port, service.ready_path());
            if http_get_status(spawned.port, service.ready_path()) == Some(200) {
                eprintln!(
                    "services: {} ready after {:.1}s",
                    service.name(),
                    begin.elapsed().as_secs_f64()
                );
                return false;
            }
            if let Ok(Some(status)) = spawned.child.try_wait() {
                failure.get_or_insert((
                    service,
                    format!("exited ({status}) before `GET {url}` answered 200"),
                ));
            } else if begin.elapsed() > service.ready_timeout() {
                failure.get_or_insert((
                    service,
                    format!(
                        "did not answer 200 on `GET {url}` within {}s",
                        service.ready_timeout().as_secs()
                    ),
                ));
            }
            true
        });
        if let Some((service, reason)) = failure {
            stop_started(state, starting);
            let log = Paths::new(state, service).log;
            bail!(
                "{} {reason}\n\nlog: {}\n{}",
                service.name(),
                log.display(),
                log_tail(&log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn log_tail(log: &Path, lines: usize) -> String {
    let Ok(text) = fs::read_to_string(log) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|line| format!("  | {line}\n"))
        .collect()
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("failed to write `{}`", path.display()))
}

/// Our own config: the packaged one listens on :5000 with htpasswd auth.
fn registry_config(data: &Path, port: u16) -> String {
    format!(
        "\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
",
        data = data.display()
    )
}

/// No scrape targets: tests that need samples serve their own target or replay a TSDB
/// built with promtool. 5 s intervals keep a new target's first sample ~5 s away.
const PROMETHEUS_CONFIG: &str = "\
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs: []
";

#[cfg(test)]
mod tests {
    use super::{Service, env_from_ports};

    #[test]
    fn export_lines_name_every_service_in_a_fixed_order() {
        let ports = [
            (Service::Mlflow, 3),
            (Service::Registry, 1),
            (Service::Prometheus, 2),
        ];
        assert_eq!(
            env_from_ports(&ports, false).export_lines(),
            "export SLIPWAY_TEST_REGISTRY=127.0.0.1:1\n\
             export SLIPWAY_TEST_PROMETHEUS=http://127.0.0.1:2\n\
             export SLIPWAY_TEST_MLFLOW=http://127.0.0.1:3\n"
        );
        assert_eq!(
            env_from_ports(&ports, true).export_lines(),
            "export SLIPWAY_TEST_REGISTRY=127.0.0.1:1\n\
             export SLIPWAY_TEST_PROMETHEUS=http://127.0.0.1:2\n\
             export SLIPWAY_TEST_MLFLOW=http://127.0.0.1:3\n\
             export SLIPWAY_TEST_MLFLOW_SEEDED=iris-random-forest\n"
        );
    }

    #[test]
    fn the_seeded_variable_needs_mlflow() {
        let env = env_from_ports(&[(Service::Registry, 1)], true);
        assert_eq!(
            env.export_lines(),
            "export SLIPWAY_TEST_REGISTRY=127.0.0.1:1\n"
        );
    }
}
