//! OTLP/gRPC: `LogsService/Export` through tonic, with the request already encoded (a codec
//! that passes bytes through) and TLS done by rustls with ring through hyper-rustls, so that
//! custom CAs, client certificates and an explicit `insecure_skip_verify` all work the same
//! as on the HTTP sinks. tonic's own TLS features stay off: with them, tonic would wrap an
//! `https` connection a second time.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::BufMut;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, GrpcMethod, Status};
use tonic_types::StatusExt;

use super::{Export, tls};
use crate::config::{Compression, OtlpSink as Config};
use crate::sink::SinkError;
use crate::sink::engine::{Code as Status_, Outcome, Verdict};
use crate::sink::http::MAX_ANSWER_BYTES;

const SERVICE: &str = "opentelemetry.proto.collector.logs.v1.LogsService";
const PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

pub struct Grpc {
    endpoint: Endpoint,
    connector: HttpsConnector<HttpConnector>,
    /// Built on first use: a tonic channel spawns its worker, which needs the runtime.
    channel: OnceLock<Channel>,
    metadata: MetadataMap,
    gzip: bool,
}

impl Grpc {
    pub fn new(c: &Config, authorization: Option<String>) -> Result<Grpc, SinkError> {
        let uri: http::Uri = c
            .endpoint
            .parse()
            .map_err(|e| SinkError::Config(format!("bad endpoint `{}`: {e}", c.endpoint)))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(SinkError::Config(format!(
                    "endpoint `{}`: give the scheme, e.g. `http://{}` (or `https://` for TLS)",
                    c.endpoint,
                    c.endpoint.split("://").last().unwrap_or("127.0.0.1:4317")
                )));
            }
        }
        if uri.authority().is_none() {
            return Err(SinkError::Config(format!(
                "endpoint `{}` has no host",
                c.endpoint
            )));
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(SinkError::Config(format!(
                "endpoint `{}`: a gRPC endpoint is `scheme://host:port` without a path (`/v1/logs` is for protocol = \"http/protobuf\")",
                c.endpoint
            )));
        }
        if uri.scheme_str() == Some("http")
            && (c.tls.ca_file.is_some() || c.tls.cert_file.is_some())
        {
            tracing::warn!(endpoint = %c.endpoint, "tls.* keys are ignored for an http:// endpoint; use https:// for TLS");
        }
        let endpoint = Endpoint::from(uri)
            .user_agent(concat!("epost-shipper/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| SinkError::Config(format!("user agent: {e}")))?
            .timeout(c.request_timeout.0)
            // No HTTP/2 keep-alive pings: grpc-go servers (the collector) answer pings more
            // often than every 5 minutes with GOAWAY "too_many_pings". TCP keep-alive on the
            // socket and the request timeout catch a dead peer instead.
            .connect_timeout(Duration::from_secs(10));
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(30)));
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(&c.tls)?)
            .https_or_http()
            .enable_http2()
            .wrap_connector(http);

        let mut metadata = MetadataMap::new();
        for (k, v) in &c.headers {
            let name = k.to_ascii_lowercase();
            if name.ends_with("-bin") || name.starts_with("grpc-") {
                return Err(SinkError::Config(format!(
                    "header `{k}`: binary (`-bin`) and `grpc-` metadata cannot be set"
                )));
            }
            let key = AsciiMetadataKey::from_bytes(name.as_bytes())
                .map_err(|e| SinkError::Config(format!("bad header name `{k}`: {e}")))?;
            let value = AsciiMetadataValue::try_from(v.expose())
                .map_err(|e| SinkError::Config(format!("bad value for header `{k}`: {e}")))?;
            metadata.insert(key, value);
        }
        if let Some(a) = authorization {
            let mut v = AsciiMetadataValue::try_from(a.as_str())
                .map_err(|e| SinkError::Config(format!("bad credentials: {e}")))?;
            v.set_sensitive(true);
            metadata.insert("authorization", v);
        }
        Ok(Grpc {
            endpoint,
            connector,
            channel: OnceLock::new(),
            metadata,
            gzip: c.compression == Compression::Gzip,
        })
    }

    fn client(&self) -> tonic::client::Grpc<Channel> {
        let channel = self
            .channel
            .get_or_init(|| {
                self.endpoint
                    .connect_with_connector_lazy(self.connector.clone())
            })
            .clone();
        // at most MAX_ANSWER_BYTES of an answer is decoded (tonic's default is 4 MiB too)
        let grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES);
        if self.gzip {
            grpc.send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip)
        } else {
            grpc
        }
    }

    pub async fn export(&self, body: Vec<u8>) -> Export {
        let mut grpc = self.client();
        if let Err(e) = grpc.ready().await {
            return Export::Failed(Outcome::Transport(format!("not connected: {e}")));
        }
        let mut req = tonic::Request::new(body);
        *req.metadata_mut() = self.metadata.clone();
        req.extensions_mut()
            .insert(GrpcMethod::new(SERVICE, "Export"));
        let path = http::uri::PathAndQuery::from_static(PATH);
        match grpc.unary(req, path, RawCodec).await {
            Ok(resp) => {
                let p = resp.into_inner().partial_success.unwrap_or_default();
                Export::Accepted {
                    rejected: p.rejected_log_records,
                    message: p.error_message,
                }
            }
            Err(status) => Export::Failed(classify(&status)),
        }
    }
}

/// What a gRPC status means for the request (OTLP spec, "Failures"), leaning to retrying:
/// only statuses that say the data itself is bad lead to the dead-letter file.
pub fn classify(status: &Status) -> Outcome {
    let code = Status_::Grpc(status.code());
    let excerpt = describe(status);
    let after = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let status_ = |verdict, excerpt| Outcome::Status {
        code,
        excerpt,
        verdict,
        after,
    };
    match status.code() {
        Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
            status_(Verdict::Refused, excerpt)
        }
        // grpc-go's answer to a message over the receiver's size limit
        Code::ResourceExhausted
            if after.is_none()
                && (status.message().contains("larger than max")
                    || status.message().contains("too large")) =>
        {
            Outcome::TooLarge { code, excerpt }
        }
        Code::Unauthenticated | Code::PermissionDenied => Outcome::Auth { code, excerpt },
        Code::Unimplemented | Code::NotFound => status_(
            Verdict::Retry,
            format!("the endpoint does not serve OTLP logs ({excerpt})"),
        ),
        // Unavailable, ResourceExhausted, DeadlineExceeded, Cancelled, Aborted, OutOfRange,
        // DataLoss, and Unknown/Internal, which are also what a broken connection gives
        _ => status_(Verdict::Retry, excerpt),
    }
}

fn describe(status: &Status) -> String {
    let mut s = status.message().to_string();
    let mut src = std::error::Error::source(status);
    while let Some(c) = src {
        // tonic's messages often repeat their cause already
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Sends the request bytes as they are; decodes the response with the reference types.
#[derive(Clone, Copy)]
struct RawCodec;

struct RawEncoder;
struct ResponseDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ExportLogsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportLogsServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("unreadable export response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn statuses() {
        let retry = |s: &Status| match classify(s) {
            o @ Outcome::Status {
                verdict: Verdict::Retry,
                ..
            } => o.after(),
            other => panic!("{other:?}"),
        };
        assert_eq!(retry(&Status::unavailable("down")), None);
        assert_eq!(retry(&Status::internal("h2 protocol error")), None);
        let delayed = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(1500))),
        );
        assert_eq!(retry(&delayed), Some(Duration::from_millis(1500)));
        assert_eq!(retry(&Status::resource_exhausted("memory limiter")), None);
        assert!(matches!(
            classify(&Status::resource_exhausted(
                "grpc: received message larger than max (5242880 vs. 4194304)"
            )),
            Outcome::TooLarge { .. }
        ));
        let bad = classify(&Status::invalid_argument("bad data"));
        assert!(!bad.retryable(), "{bad:?}");
        assert_eq!(bad.reason(), "gRPC InvalidArgument: bad data");
        assert!(matches!(
            classify(&Status::unauthenticated("no token")),
            Outcome::Auth { .. }
        ));
    }
}
