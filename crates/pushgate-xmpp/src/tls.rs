//! TLS glue for CCS, which is TLS from the first byte (no STARTTLS).
//!
//! One crypto provider only (aws-lc-rs), passed explicitly so no process-wide default is
//! needed. Certificates come in as PEM; the emulator generates its own (pushgate-emulator's
//! `tls` module), so this crate needs no certificate generator. Client roots come from the caller: the emulator's CA in tests, public roots (e.g.
//! webpki-roots, added by the caller) against real Google.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::TlsError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Parses every certificate in a PEM bundle.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem("no certificate found".into()));
    }
    Ok(certs)
}

/// A root store holding every certificate of a PEM bundle (e.g. the emulator's CA).
pub fn roots_from_pem(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A client configuration trusting exactly `roots`.
pub fn client_config(roots: RootCertStore) -> Result<rustls::ClientConfig, TlsError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A connector trusting the certificates in `ca_pem` (the emulator's CA or self-signed cert).
pub fn connector_from_pem(ca_pem: &[u8]) -> Result<TlsConnector, TlsError> {
    connector_with_roots(roots_from_pem(ca_pem)?)
}

/// A connector trusting exactly `roots`; callers add public roots themselves if they need them.
pub fn connector_with_roots(roots: RootCertStore) -> Result<TlsConnector, TlsError> {
    Ok(TlsConnector::from(Arc::new(client_config(roots)?)))
}

/// A server configuration presenting the certificate chain and key in PEM form.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certs_from_pem(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem(e.to_string()))?;
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?)
}

/// An acceptor presenting the certificate chain and key in PEM form (the emulator's CCS port).
pub fn acceptor_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, TlsError> {
    Ok(TlsAcceptor::from(Arc::new(server_config(
        cert_pem, key_pem,
    )?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway self-signed certificate and key, PEM (the emulator makes the real one).
    fn test_cert() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ccs.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_builds_both_ends() {
        let (cert_pem, key_pem) = test_cert();
        connector_from_pem(cert_pem.as_bytes()).unwrap();
        acceptor_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(matches!(
            connector_from_pem(b"nothing"),
            Err(TlsError::Pem(_))
        ));
        let (cert_pem, _) = test_cert();
        assert!(acceptor_from_pem(cert_pem.as_bytes(), b"junk").is_err());
    }
}
