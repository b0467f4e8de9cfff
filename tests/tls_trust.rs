//! Trust that works in a company: a CA installed in the operating system's certificate store
//! is trusted by the sinks without `tls.ca_file` and without `insecure_skip_verify`.
//!
//! The OS store is made private to the shipper process under test: rustls-native-certs reads
//! only `SSL_CERT_FILE` when it is set (on every platform), so the child `check` gets a file
//! holding the test CA (trusted) or another CA (not trusted). The TLS server is the in-process
//! OTLP fake of tests/fake_otlp (the real servers of tests/servers/ speak plain HTTP), with the
//! test PKI of tests/common/pki.rs (`Pki`: a CA and a server certificate for localhost). Both TLS
//! stacks are covered: OTLP/HTTP goes through reqwest (as Elasticsearch and Loki do), OTLP/gRPC
//! through the shipper's own rustls config.

mod common;
mod fake_otlp;

use std::path::Path;
use std::process::Command;

use common::pki::Pki;
use fake_otlp::{Fake, Proto, Reply, tls};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

/// `check` of a config with one OTLP sink at `endpoint`, with `store` as the OS store.
fn check(dir: &Path, endpoint: &str, proto: Proto, store: &Path) -> (Option<i32>, String) {
    std::fs::create_dir_all(dir.join("mail/incoming")).unwrap();
    let protocol = match proto {
        Proto::Grpc => "grpc",
        Proto::Http => "http/protobuf",
    };
    let cfg = dir.join("shipper.toml");
    std::fs::write(
        &cfg,
        format!(
            "[source]\nworkdir = 'mail'\nstate_dir = 'state'\n[[sink]]\ntype = \"otlp\"\nname = \"otel\"\nendpoint = \"{endpoint}\"\nprotocol = \"{protocol}\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", cfg.to_str().unwrap()])
        .env("SSL_CERT_FILE", store)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = all
        .lines()
        .find(|l| l.starts_with("sink otel (otlp): "))
        .unwrap_or_else(|| panic!("no sink line in\n{all}"))
        .to_string();
    (out.status.code(), line)
}

fn trusts_the_os_store(proto: Proto) {
    let pki = Pki::new();
    let other = Pki::new();
    let fake = Fake::start(
        proto,
        Box::new(|_, _| Reply::Ok),
        Some(tls(&pki, proto, false)),
    );
    let d = tempfile::tempdir().unwrap();
    let company = d.path().join("company-store.pem");
    std::fs::write(&company, &pki.ca_pem).unwrap();
    let foreign = d.path().join("other-store.pem");
    std::fs::write(&foreign, &other.ca_pem).unwrap();
    let endpoint = fake.endpoint(true);

    // the CA is in the OS store: trusted, no ca_file in the config
    let (code, line) = check(&d.path().join("a"), &endpoint, proto, &company);
    assert!(line.starts_with("sink otel (otlp): OK, "), "{line}");
    assert_eq!(code, Some(0), "{line}");
    // the CA is not in it (another company's is): refused, the certificate is the reason
    let (code, line) = check(&d.path().join("b"), &endpoint, proto, &foreign);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("sink otel (otlp): FAILED: "), "{line}");
    // (both test CAs have the same name: rustls finds the issuer by name and the signature
    // does not verify, `BadSignature`; a CA of another name gives `UnknownIssuer`)
    assert!(
        line.contains("invalid peer certificate"),
        "not refused for the certificate: {line}"
    );
    // control: the fake was reached both times (the first succeeded through it)
    assert!(!fake.requests().is_empty());
}

#[test]
fn http_sinks_trust_a_ca_of_the_os_store() {
    trusts_the_os_store(Proto::Http);
}

#[test]
fn grpc_sink_trusts_a_ca_of_the_os_store() {
    trusts_the_os_store(Proto::Grpc);
}

/// Credentials over plain http://: the warning, word for word, in `run`'s log at start.
/// (`check`'s report of it: tests/init.rs, `secrets_are_references`.)
#[test]
fn credentials_over_plain_http_are_warned_at_start() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("mail/incoming")).unwrap();
    let cfg = d.path().join("shipper.toml");
    std::fs::write(
        &cfg,
        "[source]\nworkdir = 'mail'\nstate_dir = 'state'\n[metrics]\nlisten = \"\"\n[[sink]]\ntype = \"elasticsearch\"\nname = \"es\"\nurl = [\"https://127.0.0.1:1\", \"http://127.0.0.1:2\"]\napi_key = \"env:EPOST_TRUST_TEST_KEY\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "run",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .env("EPOST_TRUST_TEST_KEY", "k3y-value")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // the warning is logged while the config loads, before anything is sent: read lines until
    // it comes, or the process ends (then the test fails), not for a time
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let start = line.contains("epost-shipper 0.1.0 starting") || line.contains("starting");
            if tx.send(line).is_err() || start {
                break;
            }
        }
    });
    let mut log = Vec::new();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        log.push(l);
    }
    child.kill().ok();
    child.wait().ok();
    let warnings: Vec<String> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "WARN")
        .filter_map(|v| v["fields"]["message"].as_str().map(String::from))
        .collect();
    assert_eq!(
        warnings,
        [
            "sink `es`: credentials are sent unencrypted to http://127.0.0.1:2 (plain http://); use https://"
        ],
        "{log:#?}"
    );
    assert!(!log.concat().contains("k3y-value"));
}
