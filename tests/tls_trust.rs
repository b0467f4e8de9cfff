//! Trust that works in a company: a CA installed in the operating system's certificate store
//! is trusted by the sinks without `tls.ca_file` and without `insecure_skip_verify`.
//!
//! The OS store is made private to the shipper process under test: rustls-native-certs reads
//! only `SSL_CERT_FILE` when it is set (on every platform), so the child `check` gets a file
//! holding the test CA (trusted) or another CA (not trusted). The TLS server is the in-process
//! OTLP fake of tests/fake_otlp (the real servers of tests/servers/ speak plain HTTP), with the
//! test PKI of tests/fake_otlp (`Pki`: a CA and a server certificate for localhost). Both TLS
//! stacks are covered: OTLP/HTTP goes through reqwest (as Elasticsearch and Loki do), OTLP/gRPC
//! through the shipper's own rustls config.

mod fake_otlp;

use std::path::Path;
use std::process::Command;

use fake_otlp::{Fake, Pki, Proto, Reply};

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
    let fake = Fake::start(proto, Box::new(|_, _| Reply::Ok), Some(pki.server(proto, false)));
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
