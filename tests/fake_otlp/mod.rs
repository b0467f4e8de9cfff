//! An in-process OTLP logs server for fault tests, over gRPC (tonic with the reference
//! `LogsService`) or HTTP/1.1 (a handler of `common::http_fake`, whose answers can be
//! anything, including a connection closed without one). A `policy` decides the reply to each request; records of
//! a request are stored only when the reply says so, which is what makes exact counts
//! possible. Optional TLS (rustls, ring) with a client-certificate check.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use crate::common::http_fake::{Answer, HttpFake, Options, Request};
use crate::common::pki::Pki;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Store every record.
    Ok,
    /// Store all but the last `rejected` records and answer `partial_success`.
    Partial { rejected: i64, message: String },
    /// Store nothing; gRPC status `code` / HTTP `http`, with a retry delay (gRPC `RetryInfo`,
    /// HTTP `Retry-After` in whole seconds) when given.
    Fail {
        code: tonic::Code,
        http: u16,
        message: String,
        delay: Option<Duration>,
    },
    /// Store nothing and close the connection without answering.
    Drop,
}

impl Reply {
    pub fn fail(code: tonic::Code, http: u16) -> Reply {
        Reply::Fail {
            code,
            http,
            message: format!("fake {code:?}"),
            delay: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Grpc,
    Http,
}

/// A stored record: the resource's `host.name` and the log record.
#[derive(Debug, Clone)]
pub struct Stored {
    pub host: String,
    pub record: LogRecord,
}

impl Stored {
    pub fn attr(&self, key: &str) -> Option<Any> {
        self.record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    }

    pub fn str_attr(&self, key: &str) -> Option<String> {
        match self.attr(key) {
            Some(Any::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    pub fn id(&self) -> String {
        self.str_attr("event.id").unwrap_or_default()
    }

    pub fn body(&self) -> String {
        match self.record.body.as_ref().and_then(|b| b.value.clone()) {
            Some(Any::StringValue(s)) => s,
            _ => String::new(),
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub records: usize,
    pub reply: Reply,
    /// Lower-cased header / metadata names and their values.
    pub headers: HashMap<String, String>,
}

pub type Policy = Box<dyn FnMut(usize, &ExportLogsServiceRequest) -> Reply + Send>;

pub struct State {
    pub requests: Vec<Seen>,
    pub stored: Vec<Stored>,
    policy: Policy,
}

pub struct Tls {
    pub server: Arc<rustls::ServerConfig>,
}

/// Server TLS of the one test PKI for `proto` (ALPN `h2` for gRPC).
pub fn tls(pki: &Pki, proto: Proto, require_client_cert: bool) -> Tls {
    let alpn: &[u8] = match proto {
        Proto::Grpc => b"h2",
        Proto::Http => b"http/1.1",
    };
    Tls {
        server: pki.server(alpn, require_client_cert),
    }
}

pub struct Fake {
    pub addr: SocketAddr,
    pub proto: Proto,
    pub state: Arc<Mutex<State>>,
    kills: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    runtime: Option<tokio::runtime::Runtime>,
    /// the HTTP/1.1 server (`Proto::Http`)
    http: Option<HttpFake>,
}

fn records_of(req: &ExportLogsServiceRequest) -> Vec<Stored> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let host = rl
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "host.name"))
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value);
        let host = match host {
            Some(Any::StringValue(s)) => s,
            _ => String::new(),
        };
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                out.push(Stored {
                    host: host.clone(),
                    record: r.clone(),
                });
            }
        }
    }
    out
}

impl State {
    /// Runs the policy and stores what the reply says is stored.
    fn handle(
        &mut self,
        req: &ExportLogsServiceRequest,
        headers: HashMap<String, String>,
    ) -> Reply {
        let n = self.requests.len();
        let reply = (self.policy)(n, req);
        let recs = records_of(req);
        match &reply {
            Reply::Ok => self.stored.extend(recs.iter().cloned()),
            Reply::Partial { rejected, .. } => {
                let keep = recs.len().saturating_sub(*rejected as usize);
                self.stored.extend(recs[..keep].iter().cloned());
            }
            Reply::Fail { .. } | Reply::Drop => {}
        }
        self.requests.push(Seen {
            at: Instant::now(),
            records: recs.len(),
            reply: reply.clone(),
            headers,
        });
        reply
    }
}

impl Fake {
    pub fn start(proto: Proto, policy: Policy, tls: Option<Tls>) -> Fake {
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            stored: Vec::new(),
            policy,
        }));
        match proto {
            Proto::Grpc => Self::start_grpc(state, tls),
            Proto::Http => {
                let st = state.clone();
                let opts = Options {
                    tls: tls.map(|t| t.server),
                    record: false,
                    ..Options::default()
                };
                let http = HttpFake::start_with(opts, move |r| serve_http(r, &st));
                Fake {
                    addr: http.addr,
                    proto,
                    state,
                    kills: Arc::default(),
                    runtime: None,
                    http: Some(http),
                }
            }
        }
    }

    /// tonic over connections that the fake can break (`Reply::Drop`).
    fn start_grpc(state: Arc<Mutex<State>>, tls: Option<Tls>) -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let kills: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Conn, std::io::Error>>(16);
        {
            let kills = kills.clone();
            runtime.spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, kills, tx) = (acceptor.clone(), kills.clone(), tx.clone());
                    tokio::spawn(async move {
                        let io: Box<dyn Io> = match acceptor {
                            Some(a) => match a.accept(tcp).await {
                                Ok(s) => Box::new(s),
                                // a client that refused our certificate, or had none
                                Err(_) => return,
                            },
                            None => Box::new(tcp),
                        };
                        let killed = Arc::new(AtomicBool::new(false));
                        kills.lock().unwrap().push(killed.clone());
                        let _ = tx.send(Ok(Conn { io, killed })).await;
                    });
                }
            });
        }
        let svc = LogsServiceServer::new(Svc {
            state: state.clone(),
            kills: kills.clone(),
        })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        runtime.spawn(
            tonic::transport::Server::builder()
                .serve_with_incoming(svc, tokio_stream::wrappers::ReceiverStream::new(rx)),
        );
        Fake {
            addr,
            proto: Proto::Grpc,
            state,
            kills,
            runtime: Some(runtime),
            http: None,
        }
    }

    /// `http://127.0.0.1:port` (or `https://localhost:port`).
    pub fn endpoint(&self, tls: bool) -> String {
        if tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn stored(&self) -> Vec<Stored> {
        self.state.lock().unwrap().stored.clone()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Stored records per `event.id`.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for s in self.stored() {
            *m.entry(s.id()).or_default() += 1;
        }
        m
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn kill_all(kills: &Mutex<Vec<Arc<AtomicBool>>>) {
    for k in kills.lock().unwrap().drain(..) {
        k.store(true, Ordering::SeqCst);
    }
}

struct Svc {
    state: Arc<Mutex<State>>,
    kills: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

#[tonic::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut headers = HashMap::new();
        for kv in request.metadata().iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                headers.insert(k.as_str().to_string(), v.to_str().unwrap_or("").to_string());
            }
        }
        let req = request.into_inner();
        let reply = self.state.lock().unwrap().handle(&req, headers);
        match reply {
            Reply::Ok => Ok(tonic::Response::new(ExportLogsServiceResponse::default())),
            Reply::Partial { rejected, message } => {
                Ok(tonic::Response::new(ExportLogsServiceResponse {
                    partial_success: Some(ExportLogsPartialSuccess {
                        rejected_log_records: rejected,
                        error_message: message,
                    }),
                }))
            }
            Reply::Fail {
                code,
                message,
                delay,
                ..
            } => Err(match delay {
                Some(d) => {
                    use tonic_types::{ErrorDetails, StatusExt};
                    tonic::Status::with_error_details(
                        code,
                        message,
                        ErrorDetails::with_retry_info(Some(d)),
                    )
                }
                None => tonic::Status::new(code, message),
            }),
            Reply::Drop => {
                // the connection dies before the answer is written
                kill_all(&self.kills);
                Err(tonic::Status::unavailable("dropped"))
            }
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection that the fake can break: once `killed`, reads and writes fail.
struct Conn {
    io: Box<dyn Io>,
    killed: Arc<AtomicBool>,
}

fn broken() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped by the fake")
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(broken()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(broken()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(broken()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

fn protobuf(status: u16, body: impl Into<bytes::Bytes>) -> Answer {
    Answer::new(status, body).header("content-type", "application/x-protobuf")
}

/// OTLP/HTTP: `POST /v1/logs`, the reply from the policy.
fn serve_http(r: &Request, state: &Mutex<State>) -> Answer {
    let Ok(body) = r.decoded() else {
        return protobuf(400, "bad gzip");
    };
    if !(r.method == "POST" && r.path == "/v1/logs") {
        return protobuf(404, "not found");
    }
    let Ok(req) = ExportLogsServiceRequest::decode(&body[..]) else {
        return protobuf(400, "bad protobuf");
    };
    let reply = state.lock().unwrap().handle(&req, r.header_map());
    match reply {
        Reply::Ok => protobuf(200, ExportLogsServiceResponse::default().encode_to_vec()),
        Reply::Partial { rejected, message } => {
            let r = ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: message,
                }),
            };
            protobuf(200, r.encode_to_vec())
        }
        Reply::Fail {
            http,
            message,
            delay,
            code,
        } => {
            let status = tonic_types::pb::Status {
                code: code as i32,
                message,
                details: vec![],
            };
            let a = protobuf(http, status.encode_to_vec());
            match delay {
                Some(d) => a.header("retry-after", d.as_secs_f64().ceil().to_string()),
                None => a,
            }
        }
        Reply::Drop => Answer::close(),
    }
}
