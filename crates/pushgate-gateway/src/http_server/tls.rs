//! TLS on the API's own listener, for installs without a reverse proxy: a certificate chain
//! and key from PEM files, served with rustls (aws-lc-rs), HTTP/2 and HTTP/1.1 by ALPN. The
//! files are read again on SIGHUP and when they change on disk, so a renewed certificate
//! takes effect without a restart; a pair that does not load is refused with an error in the
//! log and the one in use is kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How often the files are checked for a change.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Why a certificate and key pair could not be used. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// The key file holds no usable private key.
    #[error("{0}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key cannot be used together: {0}")]
    Rejected(rustls::Error),
}

/// The certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads and checks the pair.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(&self.cert)?;
        let key_pem = read(&self.key)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(self.cert.clone()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| TlsError::NoKey(self.key.clone()))?;
        let provider = aws_lc_rs::default_provider();
        let certified =
            CertifiedKey::from_der(chain, key, &provider).map_err(TlsError::Rejected)?;
        Ok(Arc::new(certified))
    }

    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((at(&self.cert)?, at(&self.key)?))
    }
}

/// The certificate in use, replaced when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl ReloadingCert {
    /// Loads the pair now (an error here stops the start).
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let current = RwLock::new(files.load()?);
        Ok(Arc::new(Self { files, current }))
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = self.files.load()?;
        *self.current.write() = fresh;
        Ok(())
    }

    fn reload_and_log(&self, why: &str) {
        match self.reload() {
            Ok(()) => {
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded ({why})")
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded ({why}); the one in use stays")
            }
        }
    }

    /// Reloads at each SIGHUP counted by `hangups` (the gateway's one listener) and
    /// whenever either file's modification time changes, until `stop`.
    pub async fn watch(
        self: Arc<Self>,
        stop: CancellationToken,
        mut hangups: watch::Receiver<u64>,
    ) {
        let mut seen = self.files.modified();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = crate::reload::next_hangup(&mut hangups) => self.reload_and_log("SIGHUP"),
                _ = tokio::time::sleep(WATCH_EVERY) => {
                    let now = self.files.modified();
                    if now.is_some() && now != seen {
                        seen = now;
                        self.reload_and_log("the files changed");
                    }
                }
            }
        }
    }

    /// An acceptor serving the current certificate, offering HTTP/2 and HTTP/1.1.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(TlsError::Rejected)?
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
