//! The HTTP client every HTTP sink uses: keep-alive, TLS (trusting webpki's public roots, the
//! operating system's certificate store and `tls.ca_file`; client certificate; explicit
//! opt-out of verification), auth and extra headers.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::SinkError;
use crate::config::{Secret, TlsKeys};
pub use crate::config::{display_url, redact_text};

/// Authorization for a request: basic, bearer, or an Elasticsearch API key.
pub fn auth_header(
    user: Option<&str>,
    password: Option<&Secret>,
    bearer: Option<&Secret>,
    api_key: Option<&Secret>,
) -> Option<String> {
    use base64::Engine;
    if let Some(k) = api_key {
        return Some(format!("ApiKey {}", k.expose()));
    }
    if let Some(t) = bearer {
        return Some(format!("Bearer {}", t.expose()));
    }
    user.map(|u| {
        let pw = password.map(Secret::expose).unwrap_or("");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}"));
        format!("Basic {token}")
    })
}

pub fn client(
    tls: &TlsKeys,
    timeout: Duration,
    headers: &BTreeMap<String, Secret>,
    authorization: Option<String>,
) -> Result<reqwest::Client, SinkError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| SinkError::Config(format!("bad header name `{k}`: {e}")))?;
        let value = HeaderValue::from_str(v.expose())
            .map_err(|e| SinkError::Config(format!("bad value for header `{k}`: {e}")))?;
        map.insert(name, value);
    }
    if let Some(a) = authorization {
        let mut v = HeaderValue::from_str(&a)
            .map_err(|e| SinkError::Config(format!("bad credentials: {e}")))?;
        v.set_sensitive(true);
        map.insert(AUTHORIZATION, v);
    }
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("epost-shipper/", env!("CARGO_PKG_VERSION")))
        .default_headers(map)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_keepalive(Duration::from_secs(30));
    if let Some(ca) = &tls.ca_file {
        let pem = read_pem(ca).map_err(|e| {
            SinkError::Config(format!("cannot read tls.ca_file `{}`: {e}", ca.display()))
        })?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| SinkError::Config(format!("tls.ca_file `{}`: {e}", ca.display())))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            let mut pem = read_pem(c).map_err(|e| {
                SinkError::Config(format!("cannot read tls.cert_file `{}`: {e}", c.display()))
            })?;
            pem.push(b'\n');
            pem.extend(read_pem(k).map_err(|e| {
                SinkError::Config(format!("cannot read tls.key_file `{}`: {e}", k.display()))
            })?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| SinkError::Config(format!("client certificate: {e}")))?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => {
            return Err(SinkError::Config(
                "tls.cert_file and tls.key_file go together".into(),
            ));
        }
    }
    if tls.insecure_skip_verify {
        tracing::warn!("tls.insecure_skip_verify is on: server certificates are not checked");
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| SinkError::Config(format!("HTTP client: {e}")))
}

/// The CA certificates of the operating system's store: on Windows the `ROOT` store of the
/// account (for a service running as LocalSystem that is the machine's store, where group
/// policy puts a company CA); on Linux and elsewhere the OpenSSL files, or only
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (on every platform). The same crate
/// (`rustls-native-certs`) is what reqwest loads for the HTTP sinks (its `rustls-tls-native-roots` feature), so every sink trusts the
/// same store. Errors reading parts of the store are logged, not fatal: webpki's roots and
/// `tls.ca_file` still apply.
pub fn native_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the OS certificate store");
    }
    found.certs
}

/// A PEM file named by the config: a CA bundle is at most a few hundred KiB.
fn read_pem(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    crate::config::read_limited(path, 16 << 20)
}

/// Whether an HTTP status is worth retrying.
pub fn retryable(status: reqwest::StatusCode) -> bool {
    status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error()
}

/// A short description of a transport error, with its causes. reqwest puts the request URL
/// in its message; ours carry no credentials (the config moves `user:password@` into basic
/// auth), and any that slipped through are masked here all the same.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    redact_text(&s)
}

/// The most of any sink's answer that is read (`deliver`, `check`, `start`): answers that
/// matter are a few KiB (a bulk answer is sized by its own allowance, see
/// `elasticsearch::answer_limit`). Beyond this the answer is `AnswerError::TooLarge`, so that a
/// broken or hostile endpoint answering with 600 MB costs at most this much memory.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Why an answer's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is over {limit} bytes (read no further)")]
    TooLarge { limit: usize },
    #[error("reading the answer: {0}")]
    Transport(String),
}

/// Reads at most `limit` bytes of an answer's body, chunk by chunk: a declared length over
/// the limit is refused before anything is read, and an undeclared one (chunked) is cut off
/// as soon as it passes the limit.
pub async fn read_answer(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, AnswerError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(AnswerError::TooLarge { limit });
    }
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| AnswerError::Transport(describe(&e)))?
    {
        if out.len() + chunk.len() > limit {
            return Err(AnswerError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// `read_answer` with `MAX_ANSWER_BYTES`, as text (lossy: answers are untrusted).
pub async fn read_text(resp: reqwest::Response) -> Result<String, AnswerError> {
    let b = read_answer(resp, MAX_ANSWER_BYTES).await?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// `Retry-After` of an answer (429, 503): seconds, or an HTTP date; `None` if absent or not
/// one of those. The engine caps it (`engine::MAX_SERVER_DELAY`).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(v)
}

pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// At most `n` characters of `s`, cut on a character boundary.
pub fn excerpt(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(excerpt("héllo", 2), "hé");
        assert_eq!(excerpt("hé", 5), "hé");
    }
}
