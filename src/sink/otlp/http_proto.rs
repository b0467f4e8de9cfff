//! OTLP/HTTP with binary protobuf: `POST <endpoint>/v1/logs`, through the shared reqwest
//! client (keep-alive, TLS keys, headers).

use std::io::Write;
use std::time::Duration;

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;

use super::Outcome;
use crate::config::{Compression, OtlpSink as Config};
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

    pub async fn export(&self, body: Vec<u8>) -> Outcome {
        let body = if self.gzip {
            let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), GzLevel::new(1));
            match gz.write_all(&body).and_then(|()| gz.finish()) {
                Ok(b) => b,
                Err(e) => {
                    return Outcome::Retry {
                        why: format!("gzip: {e}"),
                        after: None,
                    };
                }
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
                return Outcome::Retry {
                    why: format!("{}: {}", self.url, http::describe(&e)),
                    after: None,
                };
            }
        };
        let status = resp.status();
        let after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Retry {
                    why: format!("{}: reading the response: {}", self.url, http::describe(&e)),
                    after: None,
                };
            }
        };
        if status.is_success() {
            return match ExportLogsServiceResponse::decode(&bytes[..]) {
                Ok(r) => {
                    let p = r.partial_success.unwrap_or_default();
                    Outcome::Accepted {
                        rejected: p.rejected_log_records,
                        message: p.error_message,
                    }
                }
                Err(e) => {
                    // The status says the data was taken; an odd body does not undo that.
                    tracing::warn!(url = %self.url, error = %e, "unreadable export response body; counting the request as accepted");
                    Outcome::Accepted {
                        rejected: 0,
                        message: String::new(),
                    }
                }
            };
        }
        let why = format!("{}: HTTP {status}: {}", self.url, error_text(&bytes));
        match status.as_u16() {
            413 => Outcome::TooLarge { why },
            401 | 403 => Outcome::Retry {
                why: format!(
                    "authentication refused ({why}); records wait until the credentials are fixed"
                ),
                after,
            },
            404 | 405 | 415 => Outcome::Retry {
                why: format!("the endpoint does not serve OTLP logs ({why})"),
                after,
            },
            _ if http::retryable(status) => Outcome::Retry { why, after },
            _ => Outcome::Rejected { why },
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

/// `Retry-After`: seconds, or an HTTP date.
pub fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
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

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
