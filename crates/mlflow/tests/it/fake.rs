//! A scripted HTTP/1.1 server on a loopback port, which answers requests with canned replies in
//! order and records what it received, and a counting proxy in front of a real server. Written on
//! `tokio::net` rather than pulling in wiremock: the client only needs status, headers, body and
//! delay to be scripted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One canned answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// Wait this long before answering (to trip client timeouts).
    pub(crate) delay: Duration,
}

impl Reply {
    pub(crate) fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub(crate) fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

pub(crate) struct FakeServer {
    pub(crate) uri: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeServer {
    /// Serves `replies` in order; once they run out, every further request gets a 599 so an
    /// unexpected extra request shows up in the test's assertions.
    pub(crate) async fn start(replies: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let uri = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let recorded = Arc::clone(&recorded);
                let replies = replies.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, recorded, replies).await;
                });
            }
        });
        FakeServer { uri, requests }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

/// Reads one HTTP/1.1 request (head and `content-length` body); `None` if the peer closed first.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(Recorded, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let raw_body = buffer[header_end..].to_vec();
    let body = String::from_utf8_lossy(&raw_body).into_owned();
    Ok(Some((
        Recorded {
            method,
            target,
            headers,
            body,
        },
        raw_body,
    )))
}

async fn serve(
    mut stream: TcpStream,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    replies: Vec<Reply>,
) -> std::io::Result<()> {
    let Some((request, _)) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let index = {
        let mut requests = recorded.lock().expect("lock");
        requests.push(request);
        requests.len() - 1
    };
    let reply = replies
        .get(index)
        .cloned()
        .unwrap_or_else(|| Reply::new(599, "unexpected request"));
    tokio::time::sleep(reply.delay).await;
    let mut response = format!(
        "HTTP/1.1 {} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&reply.body);
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A loopback HTTP/1.1 proxy in front of a real server that records every request it forwards,
/// so a test can count how many attempts the client made against the real thing (the real
/// server has no request counter we could read).
pub(crate) struct CountingProxy {
    pub(crate) uri: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl CountingProxy {
    /// Forwards to `upstream` (`http://host:port`), one request per connection.
    pub(crate) async fn start(upstream: &str) -> CountingProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("plain-HTTP upstream")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let uri = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let recorded = Arc::clone(&recorded);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = forward(stream, recorded, &upstream).await;
                });
            }
        });
        CountingProxy { uri, requests }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn forward(
    mut stream: TcpStream,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    upstream: &str,
) -> std::io::Result<()> {
    let Some((request, raw_body)) = read_request(&mut stream).await? else {
        return Ok(());
    };
    // The upstream's own Host (MLflow refuses unknown Host headers) and one request per
    // connection, so the proxy never has to find where a kept-alive response ends.
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {upstream}\r\nconnection: close\r\n",
        request.method, request.target
    );
    for (name, value) in &request.headers {
        if name != "host" && name != "connection" {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    recorded.lock().expect("lock").push(request);
    let mut upstream = TcpStream::connect(upstream).await?;
    upstream.write_all(head.as_bytes()).await?;
    upstream.write_all(&raw_body).await?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).await?;
    stream.write_all(&response).await?;
    stream.shutdown().await
}
