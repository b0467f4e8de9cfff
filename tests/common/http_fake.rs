//! The one in-process HTTP server of the tests and of `examples/null_endpoint.rs`: hyper's
//! HTTP/1.1 server (keep-alive), optionally over TLS, in front of a handler that sees each
//! request whole and scripts the answer: status, headers (`Retry-After`...), body, a delay, a
//! connection closed without answering, or an endless body. A body larger than `body_limit`
//! is answered 413 (after reading it all, as nginx does, so that the client sees the answer)
//! without reaching the handler. Every request can be kept (`record`), with its body as sent.
//!
//! The fakes of the sinks (`common::fake_es`, `tests/fake_loki`, `tests/fake_otlp`) and the
//! benchmark's null endpoint are handlers of this server; none parses HTTP by hand.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Request {
    /// 1-based, in order of arrival
    pub n: u64,
    pub method: String,
    /// path and query
    pub path: String,
    pub headers: hyper::HeaderMap,
    /// the body as sent (still compressed)
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Header names (lower case) and values, for tests that compare them.
    pub fn header_map(&self) -> std::collections::HashMap<String, String> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect()
    }

    /// The body with its `Content-Encoding` (gzip) undone; borrowed when there is none.
    pub fn decoded(&self) -> Result<std::borrow::Cow<'_, [u8]>, String> {
        if !self
            .header("content-encoding")
            .is_some_and(|e| e.contains("gzip"))
        {
            return Ok(std::borrow::Cow::Borrowed(&self.body[..]));
        }
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&self.body[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        Ok(std::borrow::Cow::Owned(out))
    }

    /// `decoded`, then raw snappy (Loki's protobuf push).
    pub fn unsnappy(&self) -> Result<Vec<u8>, String> {
        snap::raw::Decoder::new()
            .decompress_vec(&self.decoded()?)
            .map_err(|e| format!("snappy: {e}"))
    }
}

/// What the body of an answer is.
#[derive(Clone)]
pub enum Payload {
    Bytes(Bytes),
    /// Blocks of spaces until `up_to` bytes or the client hangs up, counted in `written`;
    /// with `declared`, a `Content-Length` that large, otherwise chunked.
    Endless {
        declared: Option<u64>,
        up_to: u64,
        written: Arc<AtomicU64>,
    },
}

/// The scripted answer to one request.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Payload,
    /// wait this long before answering
    pub delay: Option<Duration>,
    /// close the connection without answering (after the delay)
    pub close: bool,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Payload::Bytes(body.into()),
            delay: None,
            close: false,
        }
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Answer {
        Answer::new(status, body).header("content-type", "application/json")
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, body: impl Into<Bytes>) -> Answer {
        Answer::new(status, body).header("content-type", "text/plain")
    }

    /// The connection closed without an answer.
    pub fn close() -> Answer {
        Answer {
            close: true,
            ..Answer::new(0, Bytes::new())
        }
    }

    pub fn endless(declared: Option<u64>, up_to: u64, written: Arc<AtomicU64>) -> Answer {
        Answer {
            body: Payload::Endless {
                declared,
                up_to,
                written,
            },
            ..Answer::json(200, Bytes::new())
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Answer {
        self.delay = Some(d);
        self
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

pub struct Options {
    /// `127.0.0.1:0` unless given
    pub bind: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// bodies larger than this are answered 413 without reaching the handler
    pub body_limit: Option<usize>,
    /// keep every request (`HttpFake::requests`); off for the null endpoint
    pub record: bool,
    pub worker_threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bind: "127.0.0.1:0".into(),
            tls: None,
            body_limit: None,
            record: true,
            worker_threads: 2,
        }
    }
}

struct Shared {
    handler: Handler,
    body_limit: Option<usize>,
    record: bool,
    log: Mutex<Vec<Request>>,
    count: AtomicU64,
    too_large: AtomicU64,
}

pub struct HttpFake {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port` or `https://...`
    pub url: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpFake {
    pub fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> HttpFake {
        Self::start_with(Options::default(), handler)
    }

    pub fn start_with(
        opts: Options,
        handler: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> HttpFake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.worker_threads.max(1))
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&opts.bind))
            .unwrap_or_else(|e| panic!("bind {}: {e}", opts.bind));
        let addr = listener.local_addr().expect("address");
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            handler: Arc::new(handler),
            body_limit: opts.body_limit,
            record: opts.record,
            log: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
        });
        let acceptor = opts.tls.map(tokio_rustls::TlsAcceptor::from);
        runtime.spawn(accept(listener, acceptor, shared.clone()));
        HttpFake {
            addr,
            url: format!("{scheme}://{addr}"),
            shared,
            runtime: Some(runtime),
        }
    }

    /// Every request so far (with `record`).
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests arrived (413s included).
    pub fn count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// How many were answered 413 for their size.
    pub fn too_large(&self) -> u64 {
        self.shared.too_large.load(Ordering::SeqCst)
    }

    /// Serves until the process ends (the null endpoint's main).
    pub fn serve_forever(self) -> ! {
        loop {
            std::thread::park();
        }
    }
}

impl Drop for HttpFake {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // out of descriptors, say: wait instead of spinning
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (tls, shared) = (tls.clone(), shared.clone());
        tokio::spawn(async move {
            match tls {
                None => serve(tcp, shared).await,
                Some(a) => {
                    // a client that refused our certificate, or had none, goes away here
                    if let Ok(s) = a.accept(tcp).await {
                        serve(s, shared).await;
                    }
                }
            }
        });
    }
}

async fn serve<IO>(io: IO, shared: Arc<Shared>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| answer(req, shared.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// An error that makes hyper close the connection without writing an answer.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed by the fake")
    }
}

impl std::error::Error for Closed {}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
) -> Result<hyper::Response<Reply>, Closed> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Closed)?.to_bytes();
    let n = shared.count.fetch_add(1, Ordering::SeqCst) + 1;
    let request = Request {
        n,
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
        headers: parts.headers,
        body,
    };
    if shared.record {
        shared.log.lock().unwrap().push(request.clone());
    }
    let a = if shared.body_limit.is_some_and(|l| request.body.len() > l) {
        shared.too_large.fetch_add(1, Ordering::SeqCst);
        Answer::new(
            413,
            "<html><body>413 Request Entity Too Large</body></html>",
        )
        .header("content-type", "text/html")
    } else {
        // the handler may block (a mutex, a forwarded request): off the async workers
        let h = shared.handler.clone();
        tokio::task::spawn_blocking(move || h(&request))
            .await
            .map_err(|_| Closed)?
    };
    if let Some(d) = a.delay {
        tokio::time::sleep(d).await;
    }
    if a.close {
        return Err(Closed);
    }
    response(a)
}

fn response(a: Answer) -> Result<hyper::Response<Reply>, Closed> {
    let reply = match a.body {
        Payload::Bytes(b) => Reply::Full(Some(b)),
        Payload::Endless {
            declared,
            up_to,
            written,
        } => Reply::Endless {
            declared,
            left: up_to,
            block: Bytes::from(vec![b' '; 64 << 10]),
            written,
        },
    };
    let mut r = hyper::Response::builder().status(a.status);
    for (k, v) in &a.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    r.body(reply).map_err(|_| Closed)
}

/// The body of an answer: whole, or endless (see `Payload`).
pub enum Reply {
    Full(Option<Bytes>),
    Endless {
        declared: Option<u64>,
        left: u64,
        block: Bytes,
        written: Arc<AtomicU64>,
    },
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut *self {
            Reply::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Reply::Endless {
                left,
                block,
                written,
                ..
            } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let n = (*left).min(block.len() as u64);
                *left -= n;
                // counted when hyper asks for the next block, i.e. once the last one is out
                written.fetch_add(n, Ordering::SeqCst);
                Poll::Ready(Some(Ok(Frame::data(block.slice(..n as usize)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Full(b) => b.is_none(),
            Reply::Endless { left, .. } => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Reply::Endless {
                declared: Some(d), ..
            } => SizeHint::with_exact(*d),
            Reply::Endless { .. } => SizeHint::default(),
        }
    }
}
