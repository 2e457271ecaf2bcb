//! A scripted GitHub API on loopback (feature `test-support`): answers each request whose path
//! it knows with the status and body it was given, 404 otherwise, and records every request's
//! method, path and `Authorization` header, so tests check what was asked and with which token.
//!
//! Plain `std::net`, one thread: the binaries' tests point `GITHUB_API_URL` at it from another
//! process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`.
    pub method: String,
    /// `/repos/acme/iris/actions/runs/42/approvals`.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// The server; it stops when dropped (the thread ends with the process).
pub struct ScriptedGitHub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ScriptedGitHub {
    /// Serves `routes`: path → (status, body).
    pub fn start(routes: BTreeMap<String, (u16, String)>) -> std::io::Result<ScriptedGitHub> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(match stream.try_clone() {
                    Ok(clone) => clone,
                    Err(_) => continue,
                });
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let path = parts.next().unwrap_or_default().to_owned();
                let mut authorization = None;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.trim().eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_owned());
                    }
                }
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Seen {
                        method,
                        path: path.clone(),
                        authorization,
                    });
                let (status, body) = routes
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, r#"{"message":"Not Found"}"#.to_owned()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Ok(ScriptedGitHub { url, seen })
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A review body shaped as GitHub documents it (`#/components/examples/environment-approvals-items`).
pub fn review_json(
    login: &str,
    state: &str,
    environments: &[&str],
    comment: &str,
) -> serde_json::Value {
    let environments: Vec<serde_json::Value> = environments
        .iter()
        .enumerate()
        .map(|(idx, name)| {
            serde_json::json!({
                "id": 161_088_068 + idx,
                "node_id": "MDExOkVudmlyb25tZW50MTYxMDg4MDY4",
                "name": name,
                "url": format!("https://api.github.com/repos/acme/iris/environments/{name}"),
                "html_url": format!("https://github.com/acme/iris/deployments/activity_log?environments_filter={name}"),
                "created_at": "2020-11-23T22:00:40Z",
                "updated_at": "2020-11-23T22:00:40Z"
            })
        })
        .collect();
    serde_json::json!({
        "state": state,
        "comment": comment,
        "environments": environments,
        "user": {
            "login": login,
            "id": 1,
            "node_id": "MDQ6VXNlcjE=",
            "type": "User",
            "site_admin": false
        }
    })
}
