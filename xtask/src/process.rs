//! Small process and HTTP helpers shared by the commands.
//!
//! Everything goes through `std::process::Command` and `std::net::TcpStream` rather than
//! xshell or an HTTP client crate: the needs are tiny (run a tool, signal a PID, ask a
//! loopback server for a status code) and each dependency slows every `cargo xtask`.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Context as _, Result, bail};

/// The `cargo` that runs us (cargo sets `CARGO`), so nested builds use the same toolchain.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// Renders a command as the shell line a developer would type, for messages.
pub(crate) fn display(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `command` to completion with its stdout sent to our stderr.
///
/// stdout is reserved for data (`services start` prints `export` lines that callers `eval`),
/// so tool chatter such as apt-get and pip progress must not land there.
pub(crate) fn run_to_stderr(command: &mut Command) -> Result<()> {
    let line = display(command);
    eprintln!("$ {line}");
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Whether `program` resolves to an executable file on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether `pid` is a live process (a zombie counts as dead: it has exited, only its
/// parent has not reaped it yet).
pub(crate) fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The command line of `pid`, with arguments joined by spaces.
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|byte| *byte == 0)
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Sends `signal` to the process group led by `pid` with the `kill` tool.
///
/// Services are spawned as their own process group leaders, so signalling the group also
/// reaches helpers they fork (MLflow's uvicorn worker) and none are left behind.
pub(crate) fn kill_group(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), "--".to_owned(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status()
        .context("failed to run `kill`")?;
    // A group that has already gone is what we wanted anyway.
    if !status.success() && is_alive(pid) {
        bail!("`kill -{signal} -- -{pid}` failed ({status})");
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1, found by binding port 0 and releasing it.
///
/// Another process could take the port before the service binds it; on a developer
/// machine or CI runner that race is rare, and a lost race fails readiness loudly.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("failed to bind 127.0.0.1:0 to find a free port")?;
    Ok(listener
        .local_addr()
        .context("failed to read the bound address")?
        .port())
}

/// The status code of `GET path` on `127.0.0.1:port`, or `None` if nothing answered.
///
/// Raw HTTP/1.1 is enough for readiness probes on loopback and saves an HTTP client crate.
pub(crate) fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    // The status line fits in the first read; no need to read the body.
    let mut buffer = [0_u8; 256];
    let mut len = 0;
    while len < buffer.len() {
        match stream.read(&mut buffer[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        if buffer[..len].contains(&b'\n') {
            break;
        }
    }
    let head = std::str::from_utf8(&buffer[..len]).ok()?;
    // "HTTP/1.1 200 OK"
    head.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::{Ipv4Addr, TcpListener};

    use super::{http_get_status, is_alive};

    #[test]
    fn http_get_status_reads_the_status_line() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut stream = reader.into_inner();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            request_line
        });
        assert_eq!(http_get_status(port, "/-/ready"), Some(503));
        assert_eq!(server.join().unwrap(), "GET /-/ready HTTP/1.1\r\n");
    }

    #[test]
    fn http_get_status_is_none_when_nothing_listens() {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(http_get_status(port, "/"), None);
    }

    #[test]
    fn is_alive_sees_this_process() {
        assert!(is_alive(std::process::id()));
        // PIDs are capped well below u32::MAX (pid_max is at most 2^22).
        assert!(!is_alive(u32::MAX));
    }
}
