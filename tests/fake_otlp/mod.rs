//! An in-process OTLP logs server for fault tests, over gRPC (tonic with the reference
//! `LogsService`) or HTTP/1.1 (written by hand, so that a reply can be anything, including a
//! connection dropped mid-request). A `policy` decides the reply to each request; records of
//! a request are stored only when the reply says so, which is what makes exact counts
//! possible. Optional TLS (rustls, ring) with a client-certificate check.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;

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

pub struct Fake {
    pub addr: SocketAddr,
    pub proto: Proto,
    pub state: Arc<Mutex<State>>,
    kills: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    runtime: Option<tokio::runtime::Runtime>,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            stored: Vec::new(),
            policy,
        }));
        let kills: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Conn, std::io::Error>>(16);
        {
            let kills = kills.clone();
            let state = state.clone();
            runtime.spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, kills, tx, state) =
                        (acceptor.clone(), kills.clone(), tx.clone(), state.clone());
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
                        let conn = Conn { io, killed };
                        match proto {
                            Proto::Grpc => {
                                let _ = tx.send(Ok(conn)).await;
                            }
                            Proto::Http => serve_http(conn, state).await,
                        }
                    });
                }
            });
        }
        if proto == Proto::Grpc {
            let svc = LogsServiceServer::new(Svc {
                state: state.clone(),
                kills: kills.clone(),
            })
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            runtime.spawn(
                tonic::transport::Server::builder()
                    .serve_with_incoming(svc, tokio_stream::wrappers::ReceiverStream::new(rx)),
            );
        }
        Fake {
            addr,
            proto,
            state,
            kills,
            runtime: Some(runtime),
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

/// HTTP/1.1 with keep-alive: `POST /v1/logs` with a `Content-Length` body.
async fn serve_http(mut conn: Conn, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    loop {
        // headers
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < len {
            let mut chunk = [0u8; 65536];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let mut body: Vec<u8> = buf.drain(..len).collect();
        if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut plain = Vec::new();
            if flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .is_err()
            {
                let _ = respond(&mut conn, 400, &[], b"bad gzip").await;
                continue;
            }
            body = plain;
        }
        if !request_line.starts_with("POST /v1/logs ") {
            let _ = respond(&mut conn, 404, &[], b"not found").await;
            continue;
        }
        let Ok(req) = ExportLogsServiceRequest::decode(&body[..]) else {
            let _ = respond(&mut conn, 400, &[], b"bad protobuf").await;
            continue;
        };
        let reply = state.lock().unwrap().handle(&req, headers);
        let ok = match reply {
            Reply::Ok => {
                respond(
                    &mut conn,
                    200,
                    &[],
                    &ExportLogsServiceResponse::default().encode_to_vec(),
                )
                .await
            }
            Reply::Partial { rejected, message } => {
                let r = ExportLogsServiceResponse {
                    partial_success: Some(ExportLogsPartialSuccess {
                        rejected_log_records: rejected,
                        error_message: message,
                    }),
                };
                respond(&mut conn, 200, &[], &r.encode_to_vec()).await
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
                let extra = delay
                    .map(|d| ("retry-after", d.as_secs_f64().ceil().to_string()))
                    .into_iter()
                    .collect::<Vec<_>>();
                respond(&mut conn, http, &extra, &status.encode_to_vec()).await
            }
            Reply::Drop => return,
        };
        if ok.is_err() {
            return;
        }
    }
}

async fn respond(
    conn: &mut Conn,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await?;
    conn.flush().await
}

/// A test CA with a server certificate for `localhost` / 127.0.0.1 and a client certificate.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "epost-shipper test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
        cp.distinguished_name.push(DnType::CommonName, "shipper");
        let client = cp.signed_by(&client_key, &issuer).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    /// Server TLS; with `require_client_cert`, only clients with a certificate of this CA get in.
    pub fn server(&self, proto: Proto, require_client_cert: bool) -> Tls {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = vec![CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).unwrap();
        let b = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let b = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
                .unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            b.with_client_cert_verifier(v)
        } else {
            b.with_no_client_auth()
        };
        let mut cfg = b.with_single_cert(certs, key).unwrap();
        cfg.alpn_protocols = match proto {
            Proto::Grpc => vec![b"h2".to_vec()],
            Proto::Http => vec![b"http/1.1".to_vec()],
        };
        Tls {
            server: Arc::new(cfg),
        }
    }
}
