//! The emulator's one TLS certificate, shared by its HTTPS and XMPP listeners.
//!
//! Generated here at start (self-signed, rcgen on aws-lc-rs), so only the emulator builds a
//! certificate generator; the XMPP codec only turns PEM into rustls configurations. Its SANs
//! cover the loopback names and every Google host a client might be pointed at through a
//! hosts override. The PEM is handed to clients as their trust root
//! (`pushgate emulator --tls-cert-out PATH`).

use std::sync::Arc;

use pushgate_xmpp::TlsError;
use pushgate_xmpp::tls::server_config;

/// Loopback names and the CCS (XMPP) hosts, so clients can point at the emulator by IP, by
/// `localhost`, or by the real CCS names via a hosts override.
pub const LOOPBACK_AND_CCS_NAMES: [&str; 6] = [
    "127.0.0.1",
    "localhost",
    "fcm-xmpp.googleapis.com",
    "gcm.googleapis.com",
    "gcm-xmpp.googleapis.com",
    "gcm-preprod.googleapis.com",
];

/// Google HTTP host names covered in addition to [`LOOPBACK_AND_CCS_NAMES`].
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

/// The certificate's common name.
const COMMON_NAME: &str = "pushgate CCS emulator";

/// Why the instance certificate could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen could not generate the key or the certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The generated PEM could not be turned into a rustls configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The instance's certificate and key, both PEM. `Debug` hides the key.
#[derive(Clone)]
pub struct EmulatorCert {
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for EmulatorCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl EmulatorCert {
    /// Generates a fresh self-signed certificate for every emulated host (IP addresses in
    /// the name lists become IP SANs).
    pub fn generate() -> Result<Self, CertError> {
        let names: Vec<String> = LOOPBACK_AND_CCS_NAMES
            .iter()
            .chain(&HTTP_HOST_NAMES)
            .map(|s| (*s).to_owned())
            .collect();
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, COMMON_NAME);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The certificate in PEM, for clients to trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A rustls server configuration offering the given ALPN protocols (e.g. `h2`,
    /// `http/1.1` for HTTPS; none for XMPP).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let mut config = server_config(self.cert_pem.as_bytes(), self.key_pem.as_bytes())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio_rustls::TlsAcceptor;

    #[test]
    fn certificate_is_pem_offers_alpn_and_hides_its_key() {
        let cert = EmulatorCert::generate().unwrap();
        assert!(cert.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY-----"));
        assert!(!format!("{cert:?}").contains("PRIVATE KEY-----"));
        let config = cert
            .server_config(&[b"h2".as_slice(), b"http/1.1".as_slice()])
            .unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    /// A client trusting only the instance certificate completes a handshake for `name`.
    async fn handshake_for(cert: &EmulatorCert, name: &str) -> bool {
        let acceptor = TlsAcceptor::from(cert.server_config(&[]).unwrap());
        let connector = pushgate_xmpp::tls::connector_from_pem(cert.cert_pem().as_bytes()).unwrap();
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let server = tokio::spawn(async move { acceptor.accept(server_io).await.map(|_| ()) });
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        // Kept open until the server is done: it writes session tickets after the handshake.
        let client = connector.connect(server_name, client_io).await;
        let server = server.await.unwrap();
        client.is_ok() && server.is_ok()
    }

    #[tokio::test]
    async fn certificate_covers_loopback_ccs_and_http_hosts_only() {
        let cert = EmulatorCert::generate().unwrap();
        for name in [
            "127.0.0.1",
            "localhost",
            "gcm-xmpp.googleapis.com",
            "fcm.googleapis.com",
        ] {
            assert!(handshake_for(&cert, name).await, "{name} is not covered");
        }
        assert!(!handshake_for(&cert, "example.com").await);
    }
}
