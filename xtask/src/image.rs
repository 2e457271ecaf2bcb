//! `cargo xtask image`: Slipway's container image, the three binaries on an empty base, built
//! with buildah (no daemon, no base image to download).
//!
//! Design decisions:
//! - `FROM scratch` with exactly what the binaries need, read from `ldd`: the glibc loader and
//!   the few shared libraries (libc, libm, libgcc_s), copied from the build machine to the paths
//!   the binaries ask for. Rejected: a musl static build (the target cannot be installed on our
//!   CI machines) and a distroless or Debian base (no registry is reachable from CI to pull it,
//!   and each base adds packages the tool never runs).
//! - CA certificates from the build machine (`/etc/ssl/certs/ca-certificates.crt`, also named
//!   by `SSL_CERT_FILE`), so registries, MLflow, Prometheus and the cluster over TLS work.
//! - A non-root user by number (`USER 65532:65532`, distroless's `nonroot`), so Kubernetes'
//!   `runAsNonRoot` admits the image without an `/etc/passwd` lookup.
//! - OCI labels (`org.opencontainers.image.*`): version, source, revision, licenses.
//! - The binaries are copied with their debug sections stripped (symbols stay, so a panic's
//!   backtrace names functions); `--release` builds them first, `--bin-dir DIR` takes binaries
//!   already built (the image test reuses the debug binaries it has instead of a release build).
//! - Storage is buildah's `vfs` driver under `target/image/` (or `--storage DIR`), never the
//!   machine's `/var/lib/containers`: no overlay mount or root daemon is needed, and nothing
//!   outside the workspace changes.
//!
//! Prints the local image name on stdout, or with `--push REF` the pushed `REF@sha256:…`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context as _, Result, bail};
use crate::process::{self, cargo, run_to_stderr};

/// The binaries the image carries, each at `/usr/local/bin/NAME`.
pub(crate) const BINARIES: [&str; 3] = ["slipway-deploy", "slipway-rollback", "slipway-audit"];
/// The user the image runs as: distroless's `nonroot`, by number.
pub(crate) const USER_ID: u32 = 65532;
/// Where CA certificates are taken from and put.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The local name of the image when `--tag` is not given (the version is appended).
const DEFAULT_NAME: &str = "localhost/slipway";

/// `cargo xtask image` arguments.
#[derive(Debug, Default)]
pub(crate) struct Args {
    /// Build release binaries first (`--release`).
    release: bool,
    /// Take the binaries from here instead of building them.
    bin_dir: Option<PathBuf>,
    /// The local image name (`--tag`).
    tag: Option<String>,
    /// Push to this reference (`--push REGISTRY/REPO:TAG`).
    push: Option<String>,
    /// buildah's storage (`--storage DIR`): `DIR/root` and `DIR/runroot`.
    storage: Option<PathBuf>,
}

impl Args {
    pub(crate) fn parse(args: &[String]) -> Result<Args> {
        let mut parsed = Args::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let mut value = |name: &str| {
                iter.next()
                    .cloned()
                    .with_context(|| format!("`{name}` needs a value"))
            };
            match arg.as_str() {
                "--release" => parsed.release = true,
                "--bin-dir" => parsed.bin_dir = Some(PathBuf::from(value("--bin-dir")?)),
                "--tag" => parsed.tag = Some(value("--tag")?),
                "--push" => parsed.push = Some(value("--push")?),
                "--storage" => parsed.storage = Some(PathBuf::from(value("--storage")?)),
                other => bail!(
                    "unknown `image` argument `{other}`\n\nhint: cargo xtask image [--release] [--bin-dir DIR] [--tag NAME] [--push REF] [--storage DIR]"
                ),
            }
        }
        if parsed.release && parsed.bin_dir.is_some() {
            bail!("`--release` builds the binaries and `--bin-dir` takes built ones: give one");
        }
        Ok(parsed)
    }
}

/// Builds (and with `--push`, pushes) the image; returns what to print on stdout.
pub(crate) fn run(root: &Path, args: &Args) -> Result<String> {
    crate::services::install_missing_packages(&[("buildah", "buildah")])?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => {
            let mut command = Command::new(cargo());
            command.current_dir(root).args(["build", "--locked"]);
            if args.release {
                command.arg("--release");
            }
            for binary in BINARIES {
                command.args(["-p", binary]);
            }
            run_to_stderr(&mut command)?;
            root.join("target")
                .join(if args.release { "release" } else { "debug" })
        }
    };
    let version = workspace_version(root)?;
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| format!("{DEFAULT_NAME}:{version}"));
    let storage = args
        .storage
        .clone()
        .unwrap_or_else(|| root.join("target/image/storage"));
    let context = storage.join("context");
    if context.exists() {
        fs::remove_dir_all(&context)
            .with_context(|| format!("cannot clear `{}`", context.display()))?;
    }
    let rootfs = context.join("rootfs");
    assemble_rootfs(&bin_dir, &rootfs)?;
    fs::create_dir_all(context.join("home"))?;
    let labels = Labels {
        version,
        revision: git_revision(root),
        source: workspace_field(root, "repository")?,
        licenses: workspace_field(root, "license")?,
    };
    fs::write(context.join("Containerfile"), containerfile(&labels))?;

    let buildah = |args: &[&str]| {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("runroot"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        command
    };
    let context_arg = context.to_string_lossy().into_owned();
    run_to_stderr(&mut buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "--layers=false",
        "-f",
        &format!("{context_arg}/Containerfile"),
        "-t",
        &tag,
        &context_arg,
    ]))?;
    let Some(target) = &args.push else {
        return Ok(format!("{tag}\n"));
    };
    let digest_file = storage.join("digest");
    let mut push = buildah(&["push"]);
    // Plain HTTP only for a registry on this machine (the test's), never elsewhere.
    if is_loopback(target) {
        push.arg("--tls-verify=false");
    }
    push.arg("--digestfile")
        .arg(&digest_file)
        .arg(&tag)
        .arg(format!("docker://{target}"));
    run_to_stderr(&mut push)?;
    let digest = fs::read_to_string(&digest_file)
        .with_context(|| format!("buildah wrote no `{}`", digest_file.display()))?;
    let repository = target
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(target.as_str(), |(repository, _)| repository);
    Ok(format!("{repository}@{}\n", digest.trim()))
}

fn is_loopback(reference: &str) -> bool {
    let host = reference.split('/').next().unwrap_or_default();
    if host.starts_with("[::1]") {
        return true;
    }
    let name = host.split(':').next().unwrap_or_default();
    name == "localhost"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What the image's labels say about it.
struct Labels {
    version: String,
    revision: Option<String>,
    source: String,
    licenses: String,
}

fn containerfile(labels: &Labels) -> String {
    let mut text = String::from(
        "# Written by `cargo xtask image` (xtask/src/image.rs); the build context is the rootfs it assembled.\nFROM scratch\nCOPY rootfs/ /\n",
    );
    let _ = writeln!(
        text,
        "COPY --chown={USER_ID}:{USER_ID} home/ /home/nonroot/"
    );
    let _ = writeln!(
        text,
        "ENV PATH=/usr/local/bin SSL_CERT_FILE={CA_BUNDLE} HOME=/home/nonroot"
    );
    let _ = writeln!(text, "USER {USER_ID}:{USER_ID}");
    text.push_str(
        "WORKDIR /home/nonroot\nENTRYPOINT [\"/usr/local/bin/slipway-deploy\"]\nCMD [\"--help\"]\n",
    );
    let mut pairs = vec![
        ("org.opencontainers.image.title", "slipway".to_owned()),
        (
            "org.opencontainers.image.description",
            "Slipway: release ML models to Kubernetes (slipway-deploy, slipway-rollback, slipway-audit)".to_owned(),
        ),
        ("org.opencontainers.image.version", labels.version.clone()),
        ("org.opencontainers.image.source", labels.source.clone()),
        ("org.opencontainers.image.url", labels.source.clone()),
        ("org.opencontainers.image.licenses", labels.licenses.clone()),
    ];
    if let Some(revision) = &labels.revision {
        pairs.push(("org.opencontainers.image.revision", revision.clone()));
    }
    for (key, value) in pairs {
        let _ = writeln!(text, "LABEL {key}={value:?}");
    }
    text
}

/// `rootfs/`: the binaries, the libraries they load, CA certificates, `/etc/passwd` naming the
/// non-root user, and a world-writable `/tmp`.
fn assemble_rootfs(bin_dir: &Path, rootfs: &Path) -> Result<()> {
    let bin = rootfs.join("usr/local/bin");
    fs::create_dir_all(&bin)?;
    let mut libraries = std::collections::BTreeSet::new();
    for binary in BINARIES {
        let from = bin_dir.join(binary);
        if !from.is_file() {
            bail!(
                "`{}` is not built\n\nhint: `cargo build -p {binary}`, or drop `--bin-dir` to let `cargo xtask image` build it",
                from.display()
            );
        }
        let to = bin.join(binary);
        if process::on_path("strip") {
            run_to_stderr(
                Command::new("strip")
                    .arg("--strip-debug")
                    .arg(&from)
                    .arg("-o")
                    .arg(&to),
            )?;
        } else {
            fs::copy(&from, &to).with_context(|| format!("cannot copy `{}`", from.display()))?;
        }
        let output = Command::new("ldd")
            .arg(&from)
            .output()
            .with_context(|| format!("cannot run `ldd {}`", from.display()))?;
        libraries.extend(shared_libraries(&String::from_utf8_lossy(&output.stdout)));
    }
    for library in &libraries {
        let to = rootfs.join(library.trim_start_matches('/'));
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir)?;
        }
        // `fs::copy` follows symlinks (`/lib64/ld-linux-x86-64.so.2` is one): the image gets
        // the file itself at the path the binary asks for.
        fs::copy(library, &to).with_context(|| format!("cannot copy `{library}`"))?;
    }
    let certs = rootfs.join(CA_BUNDLE.trim_start_matches('/'));
    fs::create_dir_all(certs.parent().unwrap_or(rootfs))?;
    fs::copy(CA_BUNDLE, &certs).with_context(|| {
        format!("cannot copy `{CA_BUNDLE}`\n\nhint: apt-get install -y ca-certificates")
    })?;
    let etc = rootfs.join("etc");
    fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER_ID}:{USER_ID}:nonroot:/home/nonroot:/sbin/nologin\n"
        ),
    )?;
    fs::write(
        etc.join("group"),
        format!("root:x:0:\nnonroot:x:{USER_ID}:\n"),
    )?;
    let tmp = rootfs.join("tmp");
    fs::create_dir_all(&tmp)?;
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// The absolute paths of the shared libraries `ldd` lists (the loader included, the vDSO not).
fn shared_libraries(ldd: &str) -> Vec<String> {
    ldd.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, target)) => target.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect()
}

fn workspace_version(root: &Path) -> Result<String> {
    workspace_field(root, "version")
}

/// A string field of `[workspace.package]` in the root Cargo.toml (read by hand: xtask has no
/// TOML parser, and these are one-line `key = "value"` entries).
fn workspace_field(root: &Path, key: &str) -> Result<String> {
    let text = fs::read_to_string(root.join("Cargo.toml"))?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((name, value)) = line.split_once('=')
            && name.trim() == key
        {
            return Ok(value.trim().trim_matches('"').to_owned());
        }
    }
    bail!("no `{key}` in [workspace.package] of Cargo.toml")
}

fn git_revision(root: &Path) -> Option<String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_names_the_loader_and_libraries_but_not_the_vdso() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            shared_libraries(ldd),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert!(shared_libraries("\tstatically linked\n").is_empty());
        assert!(shared_libraries("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn the_containerfile_runs_as_the_non_root_user_with_labels() {
        let text = containerfile(&Labels {
            version: "0.1.0".to_owned(),
            revision: Some("abc".to_owned()),
            source: "https://github.com/slipway-dev/slipway".to_owned(),
            licenses: "Apache-2.0".to_owned(),
        });
        assert!(text.starts_with("# Written"), "{text}");
        assert!(text.contains("\nFROM scratch\n"), "{text}");
        assert!(text.contains("\nUSER 65532:65532\n"), "{text}");
        assert!(
            text.contains("LABEL org.opencontainers.image.licenses=\"Apache-2.0\""),
            "{text}"
        );
        assert!(
            text.contains("LABEL org.opencontainers.image.revision=\"abc\""),
            "{text}"
        );
    }

    #[test]
    fn loopback_registries_alone_are_plain_http() {
        assert!(is_loopback("127.0.0.1:5000/slipway:1"));
        assert!(is_loopback("localhost:5000/slipway"));
        assert!(!is_loopback("ghcr.io/slipway-dev/slipway:0.1.0"));
        assert!(!is_loopback("127.example.com/x"));
    }
}
