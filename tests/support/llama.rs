//! A real llama.cpp `llama-server` for the real-server suite: found where
//! `../shared/tools/llm-server/build.sh` puts it (or where
//! `PROMPT_CHAIN_LLAMA_SERVER` and `PROMPT_CHAIN_LLAMA_MODEL` say), started
//! on 127.0.0.1 on a free port, and killed when dropped, panics included.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One server at a time: the machine has two cores.
pub(crate) static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The server binary and the model, if the suite is asked for. Without
/// `PROMPT_CHAIN_REAL_SERVER` the suite says it is skipped, and how to run
/// it; asked for but not built, it fails rather than pass silently.
pub(crate) fn binaries() -> Option<(PathBuf, PathBuf)> {
    if std::env::var_os("PROMPT_CHAIN_REAL_SERVER").is_none() {
        eprintln!(
            "real_server: SKIPPED. Build the server with ../shared/tools/llm-server/build.sh, then \
             run PROMPT_CHAIN_REAL_SERVER=1 cargo test --test real_server (README: Testing against a real model)"
        );
        return None;
    }
    let cache = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/prompt-chain-llm");
    let server = std::env::var_os("PROMPT_CHAIN_LLAMA_SERVER")
        .map_or_else(|| cache.join("build/bin/llama-server"), PathBuf::from);
    let model = std::env::var_os("PROMPT_CHAIN_LLAMA_MODEL").map_or_else(
        || cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        PathBuf::from,
    );
    assert!(
        server.is_file() && model.is_file(),
        "PROMPT_CHAIN_REAL_SERVER is set but {} or {} is missing: run ../shared/tools/llm-server/build.sh",
        server.display(),
        model.display()
    );
    Some((server, model))
}

/// A running llama-server.
pub(crate) struct LlamaServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
}

impl LlamaServer {
    /// Starts a server with `slots` parallel slots of 2048 tokens each (and
    /// Prometheus metrics), and waits until it is healthy.
    pub(crate) fn start(binaries: &(PathBuf, PathBuf), slots: u32) -> LlamaServer {
        Self::start_with(binaries, slots, &[])
    }

    /// Like [`start`](Self::start), with more arguments for the server
    /// (a chat template, say).
    pub(crate) fn start_with(
        binaries: &(PathBuf, PathBuf),
        slots: u32,
        extra: &[&str],
    ) -> LlamaServer {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("prompt-chain-llama-{port}.log"));
        let child = Command::new(&binaries.0)
            .args(["-m"])
            .arg(&binaries.1)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &(2048 * slots).to_string(), "-np", &slots.to_string()])
            .args(["-t", "2", "--metrics"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_or_else(|_| Stdio::null(), Stdio::from))
            .spawn()
            .expect("llama-server starts");
        let mut server = LlamaServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if get(port, "/health").is_some_and(|(status, _)| status == 200) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama-server exited with {status}; see {}", log.display());
            }
            assert!(
                Instant::now() < deadline,
                "llama-server did not become healthy in 120 s; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The OpenAI-compatible base URL.
    pub(crate) fn openai_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The Anthropic-compatible base URL (without `/v1`).
    pub(crate) fn anthropic_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's own counters: prompt tokens it processed (not served
    /// from its cache) and tokens it generated.
    pub(crate) fn counters(&self) -> (u64, u64) {
        let (_, body) = get(self.port, "/metrics").expect("metrics");
        let read = |name: &str| {
            body.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} in the metrics:\n{body}")) as u64
        };
        (
            read("llamacpp:prompt_tokens_total "),
            read("llamacpp:tokens_predicted_total "),
        )
    }

    /// Kills the server now.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A plain HTTP GET on 127.0.0.1: the status and the body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}
