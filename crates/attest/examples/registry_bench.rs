//! The registry benchmark behind `cargo xtask bench registry` (run it through xtask).
//!
//! Starts its own `docker-registry` on a free loopback port (so the request counts see no other
//! traffic and the shared services registry is not filled with bench images), pushes N images
//! built as an OCI layout with skopeo, signs each with Slipway, then times, with bounded
//! concurrency:
//! - Slipway resolving each tag (`OciRegistry::resolve`),
//! - Slipway resolving and verifying each image's signatures (`resolve` + `verify_image`),
//! - `skopeo inspect` of the same images, with and without its tag listing.
//!
//! Requests are counted from the registry's own access log (one line per HTTP request), the same
//! way for both tools. Results go to stdout as a table.

// A benchmark program prints its results; it is not library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slipway_attest::{EcdsaP256Key, Verifier, sign_image, verify_image};
use slipway_core::ImageRef;
use slipway_registry::testing::{OciLayout, linux_amd64};
use slipway_registry::{DockerConfig, OciRegistry, Registry, RegistryConfig};
use tokio::sync::Semaphore;

struct Args {
    images: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        images: 100,
        concurrency: 8,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .and_then(|value| value.parse::<usize>().ok())
                .filter(|value| *value > 0)
                .ok_or(format!("`{name}` needs a positive number"))
        };
        match flag.as_str() {
            "--images" => args.images = value("--images")?,
            "--concurrency" => args.concurrency = value("--concurrency")?,
            other => {
                return Err(format!(
                    "unknown argument `{other}` (expected --images N, --concurrency N)"
                ));
            }
        }
    }
    Ok(args)
}

/// A private `docker-registry`, killed on drop; its stdout (the access log) goes to a file.
struct BenchRegistry {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Drop for BenchRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BenchRegistry {
    fn start(dir: &Path) -> Result<BenchRegistry, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| err.to_string())?
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).map_err(|err| err.to_string())?;
        let log = dir.join("access.log");
        let log_file = std::fs::File::create(&log).map_err(|err| err.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log_file)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                format!(
                    "cannot run docker-registry ({err})\n\nhint: `cargo xtask services` installs it"
                )
            })?;
        let registry = BenchRegistry {
            child,
            addr: format!("127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            if Instant::now() > deadline {
                return Err("docker-registry did not start within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// HTTP requests the registry has logged so far.
    fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|log| {
                log.lines()
                    .filter(|line| line.contains(" HTTP/1.1\"") || line.contains(" HTTP/2.0\""))
                    .count()
            })
            .unwrap_or(0)
    }
}

fn skopeo(args: &[&str]) -> Result<(), String> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .map_err(|err| format!("cannot run skopeo ({err})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "skopeo {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs `work` for each index with at most `concurrency` at a time; blocking work (skopeo) goes
/// to the blocking pool.
async fn bounded<F, Fut>(count: usize, concurrency: usize, work: F) -> Result<(), String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..count {
        let permit = Arc::clone(&semaphore)
            .acquire_owned()
            .await
            .map_err(|err| err.to_string())?;
        let job = work(idx);
        tasks.spawn(async move {
            let result = job.await;
            drop(permit);
            result
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(|err| err.to_string())??;
    }
    Ok(())
}

struct Row {
    name: &'static str,
    wall: Duration,
    requests: usize,
}

async fn measure<F, Fut>(
    registry: &BenchRegistry,
    name: &'static str,
    count: usize,
    concurrency: usize,
    work: F,
) -> Result<Row, String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    // Let the log settle so the previous phase's last lines are not counted here.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = registry.requests();
    let started = Instant::now();
    bounded(count, concurrency, work).await?;
    let wall = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Row {
        name,
        wall,
        requests: registry.requests() - before,
    })
}

fn client(addr: &str) -> Result<Arc<OciRegistry>, String> {
    OciRegistry::new(
        RegistryConfig::default().insecure(addr),
        DockerConfig::empty(),
    )
    .map(Arc::new)
    .map_err(|err| err.to_string())
}

async fn run(args: Args) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let registry = BenchRegistry::start(dir.path())?;
    let addr = registry.addr.clone();
    eprintln!(
        "bench: registry on {addr}; pushing {} images with skopeo",
        args.images
    );

    let mut layout =
        OciLayout::create(&dir.path().join("layout")).map_err(|err| err.to_string())?;
    for idx in 0..args.images {
        let written = layout
            .image(&format!("bench-{idx}"), &linux_amd64())
            .map_err(|err| err.to_string())?;
        layout
            .tag(&format!("v{idx}"), &written)
            .map_err(|err| err.to_string())?;
    }
    let source = layout.dir().display().to_string();
    let tags: Arc<Vec<ImageRef>> = Arc::new(
        (0..args.images)
            .map(|idx| ImageRef::parse(&format!("{addr}/bench/app:v{idx}")))
            .collect::<Result<_, _>>()
            .map_err(|err| err.to_string())?,
    );
    let push_addr = addr.clone();
    bounded(args.images, args.concurrency, |idx| {
        let (source, addr) = (source.clone(), push_addr.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                skopeo(&[
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    &format!("oci:{source}:v{idx}"),
                    &format!("docker://{addr}/bench/app:v{idx}"),
                ])
            })
            .await
            .map_err(|err| err.to_string())?
        }
    })
    .await?;

    eprintln!("bench: signing each image");
    let key = Arc::new(EcdsaP256Key::generate());
    let signer_client = client(&addr)?;
    let pinned: Arc<Vec<ImageRef>> = Arc::new({
        let mut pinned = Vec::with_capacity(args.images);
        for image in tags.iter() {
            let resolved = signer_client
                .resolve(image)
                .await
                .map_err(|err| err.to_string())?;
            let image = image.with_digest(resolved.digest);
            sign_image(signer_client.as_ref(), key.as_ref(), &image)
                .await
                .map_err(|err| err.to_string())?;
            pinned.push(image);
        }
        pinned
    });

    let mut rows = Vec::new();
    // A fresh client per phase: nothing cached from setup or from the previous phase.
    let resolver = client(&addr)?;
    rows.push(
        measure(
            &registry,
            "slipway resolve",
            args.images,
            args.concurrency,
            |idx| {
                let (resolver, tags) = (Arc::clone(&resolver), Arc::clone(&tags));
                async move {
                    resolver
                        .resolve(&tags[idx])
                        .await
                        .map(drop)
                        .map_err(|err| err.to_string())
                }
            },
        )
        .await?,
    );
    let verifier = client(&addr)?;
    let public = Arc::new(key.public());
    rows.push(
        measure(
            &registry,
            "slipway resolve + verify",
            args.images,
            args.concurrency,
            |idx| {
                let (verifier, tags, public, pinned) = (
                    Arc::clone(&verifier),
                    Arc::clone(&tags),
                    Arc::clone(&public),
                    Arc::clone(&pinned),
                );
                async move {
                    let resolved = verifier
                        .resolve(&tags[idx])
                        .await
                        .map_err(|err| err.to_string())?;
                    if resolved.digest.to_string()
                        != pinned[idx]
                            .digest()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    {
                        return Err(format!("{} resolved to an unexpected digest", tags[idx]));
                    }
                    let keys: [&dyn Verifier; 1] = [public.as_ref()];
                    let report = verify_image(
                        verifier.as_ref(),
                        &keys,
                        &tags[idx].with_digest(resolved.digest),
                    )
                    .await
                    .map_err(|err| err.to_string())?;
                    if report.verified_keys().len() == 1 {
                        Ok(())
                    } else {
                        Err(format!(
                            "{}: signature did not verify: {report:?}",
                            tags[idx]
                        ))
                    }
                }
            },
        )
        .await?,
    );
    for (name, extra) in [
        ("skopeo inspect", None),
        ("skopeo inspect --no-tags", Some("--no-tags")),
    ] {
        rows.push(
            measure(&registry, name, args.images, args.concurrency, |idx| {
                let target = format!("docker://{addr}/bench/app:v{idx}");
                async move {
                    tokio::task::spawn_blocking(move || {
                        let mut skopeo_args = vec!["inspect", "--tls-verify=false"];
                        skopeo_args.extend(extra);
                        skopeo_args.push(&target);
                        skopeo(&skopeo_args)
                    })
                    .await
                    .map_err(|err| err.to_string())?
                }
            })
            .await?,
        );
    }

    println!(
        "registry bench: {} images, concurrency {}, private docker-registry on loopback",
        args.images, args.concurrency
    );
    println!(
        "{:<28} {:>10} {:>10} {:>15} {:>12}",
        "phase", "wall", "requests", "requests/image", "ms/image"
    );
    let find = |name: &str| rows.iter().find(|row| row.name == name);
    let ratios = match (
        find("slipway resolve + verify"),
        find("skopeo inspect"),
        find("skopeo inspect --no-tags"),
    ) {
        (Some(ours), Some(peer), Some(peer_no_tags)) => Some(format!(
            "slipway resolve + verify next to skopeo inspect: {:.2}x the wall time, {:.2}x the requests (--no-tags: {:.2}x, {:.2}x)",
            ours.wall.as_secs_f64() / peer.wall.as_secs_f64(),
            ours.requests as f64 / peer.requests.max(1) as f64,
            ours.wall.as_secs_f64() / peer_no_tags.wall.as_secs_f64(),
            ours.requests as f64 / peer_no_tags.requests.max(1) as f64,
        )),
        _ => None,
    };
    for row in &rows {
        let per_image = row.requests as f64 / args.images as f64;
        let wall_ms = row.wall.as_secs_f64() * 1000.0;
        println!(
            "{:<28} {:>9.2}s {:>10} {:>15.1} {:>12.1}",
            row.name,
            row.wall.as_secs_f64(),
            row.requests,
            per_image,
            wall_ms / args.images as f64
        );
    }
    println!("(every image's signature verified; requests counted from the registry's access log)");
    if let Some(ratios) = ratios {
        println!("{ratios}");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
