//! The model server's reload endpoint: after promotion, tell the server which model version to
//! load, authenticated with the admin token read from a Kubernetes Secret (the seeds' runbook:
//! `POST /admin/reload` with `X-Admin-Token`).
//!
//! The token is a `Secret` from the cluster to the header and nowhere else: errors name the
//! endpoint's host and the Secret, never the token or the full URL.

use std::time::Duration;

use slipway_core::{ModelVersion, Secret};

/// Where to reload and where the token lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSpec {
    /// The endpoint, e.g. `http://iris-classifier.ml-serving.svc:8080/admin/reload`.
    pub url: String,
    /// The Secret (in the release's namespace) holding the admin token.
    pub secret_name: String,
    /// Its key.
    pub secret_key: String,
}

/// Header carrying the admin token.
pub const ADMIN_TOKEN_HEADER: &str = "X-Admin-Token";

/// Posts `{"model": name, "version": n}` with the token; 3 attempts on connection errors and
/// 5xx, none on 4xx. A 401/403 says the token was refused. A redirect is refused, never
/// followed, so the token reaches only the configured address.
pub async fn reload(spec: &ReloadSpec, token: &Secret, model: &ModelVersion) -> Result<(), String> {
    let host = reqwest::Url::parse(&spec.url)
        .map_err(|err| format!("reload URL is not valid ({err})"))?
        .host_str()
        .unwrap_or("unknown host")
        .to_owned();
    // No redirects: reqwest would resend the admin token header to wherever a 3xx points (it
    // strips only the standard credential headers), so a redirect is an answer, not a hop.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
    let body = serde_json::json!({"model": model.name, "version": model.version.to_string()});
    let mut last = String::new();
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=3 {
        let sent = client
            .post(&spec.url)
            .header(ADMIN_TOKEN_HEADER, token.expose())
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                return Err(format!(
                    "the model server at {host} refused the admin token from Secret `{}` key `{}` ({})",
                    spec.secret_name,
                    spec.secret_key,
                    response.status()
                ));
            }
            Ok(response) if response.status().is_redirection() => {
                let target = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|location| location.to_str().ok())
                    .and_then(|location| response.url().join(location).ok())
                    .and_then(|url| url.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "an address it did not name".to_owned());
                return Err(format!(
                    "the model server at {host} answered {} redirecting to {target}; the admin token is not sent on to a redirect (hint: set the reload URL to the address that serves the endpoint)",
                    response.status()
                ));
            }
            Ok(response) if response.status().is_client_error() => {
                return Err(format!(
                    "the model server at {host} answered {}",
                    response.status()
                ));
            }
            Ok(response) => {
                last = format!("the model server at {host} answered {}", response.status())
            }
            Err(err) => {
                let what = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "could not be reached"
                } else {
                    "failed"
                };
                last = format!("the model server at {host} {what}");
            }
        }
        if attempt < 3 {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    Err(format!("{last} (gave up after 3 attempts)"))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;

    /// Reads one request's head and body (as far as the peer sent within a moment).
    fn read_request(stream: &mut std::net::TcpStream) -> String {
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut request = Vec::new();
        let mut buf = [0_u8; 4096];
        while let Ok(read) = stream.read(&mut buf) {
            if read == 0 {
                break;
            }
            request.extend_from_slice(&buf[..read]);
            let text = String::from_utf8_lossy(&request);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|value| value.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&request).into_owned()
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_never_gets_the_token() {
        // The other host: another loopback address, as a server elsewhere would be.
        let elsewhere = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        elsewhere.set_nonblocking(true).expect("nonblocking");
        let elsewhere_port = elsewhere.local_addr().expect("addr").port();
        let server = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = server.local_addr().expect("addr").port();
        let redirecting = std::thread::spawn(move || {
            let (mut stream, _) = server.accept().expect("accept");
            let request = read_request(&mut stream);
            let response = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:{elsewhere_port}/admin/reload\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).expect("respond");
            request
        });
        let spec = ReloadSpec {
            url: format!("http://127.0.0.1:{port}/admin/reload"),
            secret_name: "iris-admin".into(),
            secret_key: "token".into(),
        };
        let token = Secret::new("s3cr3t-admin-token");
        let model = ModelVersion {
            name: "iris".into(),
            version: 8,
        };
        let err = reload(&spec, &token, &model)
            .await
            .expect_err("a redirect is refused");
        let first = redirecting.join().expect("server");
        assert!(
            first.contains("s3cr3t-admin-token"),
            "the configured server gets the token: {first}"
        );
        assert!(
            err.contains("answered 307") && err.contains("redirecting to 127.0.0.2"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
        // Give a follow-up request time to arrive, then look: nothing reached the other host.
        tokio::time::sleep(Duration::from_millis(300)).await;
        match elsewhere.accept() {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((mut stream, _)) => panic!(
                "the redirect was followed to the other host: {}",
                read_request(&mut stream)
            ),
            Err(err) => panic!("accept: {err}"),
        }
    }
}
