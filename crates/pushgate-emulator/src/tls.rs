//! The emulator's one TLS certificate, shared by its HTTPS and XMPP listeners.
//!
//! Generated at start (self-signed, aws-lc-rs); its SANs cover the loopback names and every
//! Google host a client might be pointed at through a hosts override. The PEM is handed to
//! clients as their trust root (`pushgate emulator --tls-cert-out PATH`).

use std::sync::Arc;

use pushgate_xmpp::TlsError;
use pushgate_xmpp::tls::{SelfSigned, self_signed, server_config};

/// Google HTTP host names covered in addition to `pushgate_xmpp::tls::EMULATOR_SANS`
/// (loopback and the CCS hosts).
pub const HTTP_HOST_NAMES: [&str; 9] = [
    "fcm.googleapis.com",
    "oauth2.googleapis.com",
    "iid.googleapis.com",
    "android.googleapis.com",
    "gcm-http.googleapis.com",
    "android.apis.google.com",
    "android.clients.google.com",
    "www.google.com",
    "accounts.google.com",
];

/// The instance's certificate and key. `Debug` hides the key.
#[derive(Debug, Clone)]
pub struct EmulatorCert(SelfSigned);

impl EmulatorCert {
    /// Generates a fresh self-signed certificate for every emulated host.
    pub fn generate() -> Result<Self, TlsError> {
        self_signed(&HTTP_HOST_NAMES).map(EmulatorCert)
    }

    /// The certificate in PEM, for clients to trust.
    pub fn cert_pem(&self) -> &str {
        &self.0.cert_pem
    }

    /// A rustls server configuration offering the given ALPN protocols (e.g. `h2`,
    /// `http/1.1` for HTTPS; none for XMPP).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = server_config(self.0.cert_pem.as_bytes(), self.0.key_pem.as_bytes())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_covers_http_and_xmpp_hosts_and_hides_its_key() {
        let cert = EmulatorCert::generate().unwrap();
        assert!(cert.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!format!("{cert:?}").contains("PRIVATE KEY-----\n"));
        let config = cert
            .server_config(&[b"h2".as_slice(), b"http/1.1".as_slice()])
            .unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
