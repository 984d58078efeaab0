//! An HTTP server on 127.0.0.1 (port 0) that records requests and serves
//! scripted responses, for testing the model providers over real sockets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: serde_json::Value,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to send back.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A status, headers and a body.
    Full(u16, Vec<(&'static str, String)>, String),
    /// A 200 `text/event-stream`, written piece by piece; `cut` closes the
    /// connection before the end of the body.
    Stream(Vec<String>, bool),
    /// Answers after a delay (tokio time).
    Slow(Duration, Box<Reply>),
    /// Like `Stream`, but advertising `Keep-Alive` and closing the
    /// connection after the reply anyway, as llama.cpp's server does.
    StreamThenClose(Vec<String>),
    /// A 200 `text/event-stream`, one event every `every`; with `stall`, the
    /// server then sends nothing more (and keeps the connection open).
    Paced {
        every: Duration,
        events: Vec<String>,
        stall: bool,
    },
    /// A 200 `text/event-stream` written as these raw byte pieces (each
    /// its own chunk, flushed), so a read may end inside a character.
    Bytes(Vec<Vec<u8>>),
}

pub(crate) fn json(status: u16, body: serde_json::Value) -> Reply {
    Reply::Full(status, Vec::new(), body.to_string())
}

pub(crate) struct FakeServer {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeServer {
    /// Starts a server that answers requests with `replies`, in order (the
    /// last one repeats).
    pub(crate) async fn start(replies: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((mut socket, _)) = listener.accept().await {
                let reply = replies.get(n).or(replies.last()).cloned();
                n += 1;
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    log.lock().expect("lock").push(request);
                    if let Some(reply) = reply {
                        write_reply(&mut socket, reply).await;
                    }
                });
            }
        });
        FakeServer { url, received }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buffer[header_end..]).unwrap_or(serde_json::Value::Null);
    Some(Received {
        path,
        headers,
        body,
    })
}

async fn write_reply(socket: &mut tokio::net::TcpStream, reply: Reply) {
    match reply {
        Reply::Full(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
        }
        Reply::Stream(events, cut) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            for event in events {
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = socket.write_all(chunk.as_bytes()).await;
                let _ = socket.flush().await;
            }
            if !cut {
                let _ = socket.write_all(b"0\r\n\r\n").await;
            }
        }
        Reply::StreamThenClose(events) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            for event in events {
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = socket.write_all(chunk.as_bytes()).await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
            let _ = socket.flush().await;
            // The connection looks alive: a client that sends its next
            // request on it sees the connection closed with no answer.
            let mut next = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_millis(200), socket.read(&mut next)).await;
            return;
        }
        Reply::Bytes(pieces) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            for piece in pieces {
                let _ = socket
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await;
                let _ = socket.write_all(&piece).await;
                let _ = socket.write_all(b"\r\n").await;
                let _ = socket.flush().await;
                // A pause so the pieces tend to arrive as separate reads.
                tokio::task::yield_now().await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
        Reply::Paced {
            every,
            events,
            stall,
        } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.flush().await;
            for event in events {
                tokio::time::sleep(every).await;
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = socket.write_all(chunk.as_bytes()).await;
                let _ = socket.flush().await;
            }
            if stall {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
        Reply::Slow(delay, reply) => {
            tokio::time::sleep(delay).await;
            Box::pin(write_reply(socket, *reply)).await;
        }
    }
    let _ = socket.shutdown().await;
}
