//! The notification boundary: where "release started / promoted / stopped / rolled back"
//! messages go.
//!
//! Implementations:
//! - [`MemoryNotifier`]: collects messages (the dry run prints them; tests read them).
//! - [`WebhookNotifier`]: a Slack incoming webhook (`{"text": …}`) or a generic JSON webhook
//!   (the [`Notification`] itself), with a timeout and bounded retries on connection errors,
//!   429 and 5xx.
//! - [`FanOut`]: several notifiers; each failure is reported, none stops the others.
//!
//! A failed notification never blocks or fails a release: the pipeline records it as a stage
//! event and in the audit trail, and carries on.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use slipway_core::Secret;

/// A message about a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `namespace/name`.
    pub release: String,
    /// `started`, `promoted`, `rejected`, `failed`, `rolled-back`, `rollback-failed`.
    pub event: String,
    /// One sentence.
    pub summary: String,
}

/// Sends notifications.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one; the error is a sentence for the run's log.
    async fn notify(&self, notification: &Notification) -> Result<(), String>;
}

/// Keeps every notification in memory.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl MemoryNotifier {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait::async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), String> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(notification.clone());
        Ok(())
    }
}

/// What a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// Slack incoming webhook: `{"text": "…"}`.
    Slack,
    /// Any JSON endpoint: the notification as JSON.
    Json,
}

/// Posts notifications to a webhook. The URL is a secret (Slack's embeds a token), so errors
/// name the webhook by its kind and host only.
pub struct WebhookNotifier {
    kind: WebhookKind,
    url: Secret,
    host: String,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// A notifier for `url`, with a 10 s timeout and 3 attempts.
    pub fn new(kind: WebhookKind, url: Secret) -> Result<WebhookNotifier, String> {
        let parsed = reqwest::Url::parse(url.expose())
            .map_err(|err| format!("invalid webhook URL: {err}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "webhook URL must be http or https, not `{}`",
                parsed.scheme()
            ));
        }
        let host = parsed.host_str().unwrap_or("unknown host").to_owned();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(WebhookNotifier {
            kind,
            url,
            host,
            client,
            attempts: 3,
            backoff: Duration::from_millis(500),
        })
    }

    /// Sets attempts and the first backoff (doubling), e.g. to keep tests fast.
    #[must_use]
    pub fn retries(mut self, attempts: u32, backoff: Duration) -> WebhookNotifier {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    fn body(&self, notification: &Notification) -> serde_json::Value {
        match self.kind {
            WebhookKind::Slack => serde_json::json!({
                "text": format!("*{}* {}: {}", notification.release, notification.event, notification.summary),
            }),
            WebhookKind::Json => serde_json::to_value(notification).unwrap_or_default(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), String> {
        let body = self.body(notification);
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match self.client.post(self.url.expose()).json(&body).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    last = format!("webhook at {} answered {status}", self.host);
                    if !(status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS)
                    {
                        return Err(last);
                    }
                }
                // reqwest errors can print the URL: report only what kind of failure it was.
                Err(err) => {
                    let what = if err.is_timeout() {
                        "timed out"
                    } else if err.is_connect() {
                        "could not connect"
                    } else {
                        "failed"
                    };
                    last = format!("webhook at {} {what}", self.host);
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        Err(format!("{last} (gave up after {} attempts)", self.attempts))
    }
}

/// Sends to every notifier; fails with all their errors joined when any failed.
#[derive(Default)]
pub struct FanOut {
    /// The notifiers.
    pub notifiers: Vec<Box<dyn Notifier>>,
}

#[async_trait::async_trait]
impl Notifier for FanOut {
    async fn notify(&self, notification: &Notification) -> Result<(), String> {
        let mut errors = Vec::new();
        for notifier in &self.notifiers {
            if let Err(err) = notifier.notify(notification).await {
                errors.push(err);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A loopback server answering each request with the next status in `statuses`, keeping bodies.
    async fn server(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/hooks/T000/B000/s3cr3tpath",
            listener.local_addr().expect("addr")
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (hits_task, bodies_task) = (hits.clone(), bodies.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buffer = vec![0u8; 16 * 1024];
                let mut read = 0;
                while let Ok(n) = socket.read(&mut buffer[read..]).await {
                    read += n;
                    let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            bodies_task
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(body.to_owned());
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let idx = hits_task.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(idx).copied().unwrap_or(200);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (url, hits, bodies)
    }

    fn note() -> Notification {
        Notification {
            release: "ml/iris".into(),
            event: "promoted".into(),
            summary: "iris/3 serves".into(),
        }
    }

    #[tokio::test]
    async fn slack_body_and_retry_on_5xx() {
        let (url, hits, bodies) = server(vec![503, 200]).await;
        let notifier = WebhookNotifier::new(WebhookKind::Slack, Secret::new(url))
            .expect("url")
            .retries(3, Duration::from_millis(1));
        notifier
            .notify(&note())
            .await
            .expect("second attempt succeeds");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        let body = bodies.lock().unwrap_or_else(PoisonError::into_inner)[1].clone();
        assert_eq!(body, r#"{"text":"*ml/iris* promoted: iris/3 serves"}"#);
    }

    #[tokio::test]
    async fn no_retry_on_4xx_and_no_secret_in_errors() {
        let (url, hits, _) = server(vec![404]).await;
        let notifier = WebhookNotifier::new(WebhookKind::Json, Secret::new(url))
            .expect("url")
            .retries(3, Duration::from_millis(1));
        let err = notifier.notify(&note()).await.expect_err("404");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "4xx is final");
        assert!(
            err.starts_with("webhook at 127.0.0.1 answered 404"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t") && !format!("{notifier:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn endpoint_down_gives_up_after_bounded_attempts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        drop(listener);
        let notifier = WebhookNotifier::new(WebhookKind::Json, Secret::new(url))
            .expect("url")
            .retries(2, Duration::from_millis(1));
        let err = notifier.notify(&note()).await.expect_err("down");
        assert!(
            err.contains("could not connect") && err.contains("gave up after 2 attempts"),
            "{err}"
        );
    }
}
