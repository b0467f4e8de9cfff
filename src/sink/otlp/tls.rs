//! rustls client configuration for OTLP/gRPC from the shared `tls.*` keys: the public
//! (webpki) roots, the operating system's store (`sink::http::native_roots`) and `ca_file`, a client
//! certificate for mutual TLS, or, only when
//! `insecure_skip_verify` says so, no certificate check at all. ring is the crypto provider
//! (no aws-lc: the Windows build cross-compiles with mingw).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsKeys;
use crate::sink::SinkError;

fn read(what: &str, path: &std::path::Path) -> Result<Vec<u8>, SinkError> {
    // a certificate path is config input: bounded, like every file the config names
    crate::config::read_limited(path, 16 << 20)
        .map_err(|e| SinkError::Config(format!("cannot read {what} `{}`: {e}", path.display())))
}

pub fn client_config(tls: &TlsKeys) -> Result<ClientConfig, SinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config(format!("TLS: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!("tls.insecure_skip_verify is on: server certificates are not checked");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        // A certificate of the store that rustls cannot use is skipped, as reqwest does for
        // the HTTP sinks: one odd root must not stop the shipper.
        let (_added, _skipped) = roots.add_parsable_certificates(crate::sink::http::native_roots());
        if let Some(ca) = &tls.ca_file {
            let pem = read("tls.ca_file", ca)?;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    SinkError::Config(format!("tls.ca_file `{}`: {e}", ca.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    SinkError::Config(format!("tls.ca_file `{}`: {e}", ca.display()))
                })?;
                n += 1;
            }
            if n == 0 {
                return Err(SinkError::Config(format!(
                    "tls.ca_file `{}` holds no PEM certificate",
                    ca.display()
                )));
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            let pem = read("tls.cert_file", c)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SinkError::Config(format!("tls.cert_file `{}`: {e}", c.display())))?;
            if chain.is_empty() {
                return Err(SinkError::Config(format!(
                    "tls.cert_file `{}` holds no PEM certificate",
                    c.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_slice(&read("tls.key_file", k)?)
                .map_err(|e| SinkError::Config(format!("tls.key_file `{}`: {e}", k.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| SinkError::Config(format!("client certificate: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(SinkError::Config(
            "tls.cert_file and tls.key_file go together".into(),
        )),
    }
}

/// Accepts any certificate chain, but still checks that the server holds the key of the
/// certificate it showed (the handshake signature).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
