//! OTLP/HTTP with binary protobuf: `POST <endpoint>/v1/logs`, through the shared reqwest
//! client (keep-alive, TLS keys, headers).

use std::io::Write;

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;

use super::Export;
use crate::config::{Compression, OtlpSink as Config};
use crate::sink::engine::{Code, Outcome, Verdict};
use crate::sink::{SinkError, http};

pub struct Http {
    client: reqwest::Client,
    url: String,
    gzip: bool,
}

/// `http://host:4318` → `http://host:4318/v1/logs`; a URL that already ends in `/v1/logs` is
/// used as it is (as `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` is).
pub fn logs_url(endpoint: &str) -> Result<String, SinkError> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| SinkError::Config(format!("bad endpoint `{endpoint}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SinkError::Config(format!(
            "endpoint `{endpoint}`: the scheme must be http or https"
        )));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if url.path().trim_end_matches('/').ends_with("/v1/logs") {
        base.to_string()
    } else {
        format!("{base}/v1/logs")
    })
}

impl Http {
    pub fn new(c: &Config, authorization: Option<String>) -> Result<Http, SinkError> {
        Ok(Http {
            client: http::client(&c.tls, c.request_timeout.0, &c.headers, authorization)?,
            url: logs_url(&c.endpoint)?,
            gzip: c.compression == Compression::Gzip,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn export(&self, body: Vec<u8>) -> Export {
        let failed = |o| Export::Failed(o);
        let body = if self.gzip {
            let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), GzLevel::new(1));
            match gz.write_all(&body).and_then(|()| gz.finish()) {
                Ok(b) => b,
                Err(e) => return failed(Outcome::Transport(format!("gzip: {e}"))),
            }
        } else {
            body
        };
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-protobuf");
        if self.gzip {
            req = req.header("content-encoding", "gzip");
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let why = format!("{}: {}", self.url, http::describe(&e));
                return failed(Outcome::Transport(why));
            }
        };
        let status = resp.status();
        let after = http::retry_after(resp.headers());
        let bytes = match http::read_answer(resp, http::MAX_ANSWER_BYTES).await {
            Ok(b) => b,
            // The status says the data was taken; an unreadable body does not undo that
            // (sending it again would store it twice: OTLP writes are not idempotent).
            Err(e) if status.is_success() => {
                if let Some(repeated) = crate::warn_limit::check("otlp.unreadable", &self.url) {
                    tracing::warn!(url = %self.url, error = %e, repeated, "unreadable export response body; counting the request as accepted");
                }
                bytes::Bytes::new()
            }
            Err(e) => return failed(Outcome::Unreadable(e)),
        };
        if status.is_success() {
            return accepted(&self.url, &bytes);
        }
        let code = Code::Http(status.as_u16());
        let excerpt = format!("{}: {}", self.url, error_text(&bytes));
        let status_ = |verdict, excerpt| Outcome::Status {
            code,
            excerpt,
            verdict,
            after,
        };
        failed(match status.as_u16() {
            413 => Outcome::TooLarge { code, excerpt },
            401 | 403 => Outcome::Auth { code, excerpt },
            404 | 405 | 415 => status_(
                Verdict::Retry,
                format!("the endpoint does not serve OTLP logs ({excerpt})"),
            ),
            _ if http::retryable(status) => status_(Verdict::Retry, excerpt),
            _ => status_(Verdict::Refused, excerpt),
        })
    }
}

/// A success answer: its `partial_success`, if it has one.
fn accepted(url: &str, bytes: &[u8]) -> Export {
    match ExportLogsServiceResponse::decode(bytes) {
        Ok(r) => {
            let p = r.partial_success.unwrap_or_default();
            Export::Accepted {
                rejected: p.rejected_log_records,
                message: p.error_message,
            }
        }
        Err(e) => {
            // The status says the data was taken; an odd body does not undo that.
            if let Some(repeated) = crate::warn_limit::check("otlp.unreadable", url) {
                tracing::warn!(url = %url, error = %e, repeated, "unreadable export response body; counting the request as accepted");
            }
            Export::Accepted {
                rejected: 0,
                message: String::new(),
            }
        }
    }
}

/// The reason in an error response: a `google.rpc.Status` (protobuf), or the text as it is.
fn error_text(body: &[u8]) -> String {
    if let Ok(s) = tonic_types::pb::Status::decode(body)
        && !s.message.is_empty()
    {
        return s.message;
    }
    let t = String::from_utf8_lossy(body);
    let t = t.trim();
    match t.char_indices().nth(500) {
        Some((i, _)) => t[..i].to_string(),
        None => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            logs_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            logs_url("https://otel.example.com/otlp/").unwrap(),
            "https://otel.example.com/otlp/v1/logs"
        );
        assert_eq!(
            logs_url("http://c:4318/v1/logs").unwrap(),
            "http://c:4318/v1/logs"
        );
        assert!(logs_url("127.0.0.1:4318").is_err());
    }
}
