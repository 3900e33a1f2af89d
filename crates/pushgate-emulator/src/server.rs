//! Starting, serving and stopping the emulator (HTTP/1.1 and h2c on one port).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bind::{ListenerKind, bind};
use crate::config::EmulatorConfig;
use crate::state::EmulatorState;
use crate::tls::EmulatorCert;
use crate::{
    DEFAULT_C2DM_EMAIL, DEFAULT_SENDER_ID, c2dm, ccs, control, groups, iid, legacy, listen, v1,
};

/// How long a graceful shutdown waits for open requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Every emulator route (legacy endpoints and `/emulator/` control API) over `state`.
///
/// Exists so the emulator can be mounted in-process (inside the gateway's sandbox) as well
/// as served on its own by [`Emulator::start`].
pub fn router(state: EmulatorState) -> Router {
    let max_body_bytes = state.get().max_body_bytes;
    Router::new()
        .merge(legacy::routes())
        .merge(v1::routes())
        .merge(iid::routes())
        .merge(groups::routes())
        .merge(c2dm::routes())
        .merge(control::routes())
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Entry point: starts an emulator instance.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Binds `config.http` (and `config.https` when set) and serves the emulator in the
    /// background until [`RunningEmulator::shutdown`].
    pub async fn start(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
        let listener = bind(ListenerKind::Http, config.http).await?;
        let addr = listener.local_addr()?;
        let state = EmulatorState::new(&config);
        let app = router(state.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        // One certificate per instance, shared by every TLS listener (HTTPS and XMPP).
        let cert = if config.https.is_some() || config.xmpp.is_some() {
            Some(EmulatorCert::generate().map_err(std::io::Error::other)?)
        } else {
            None
        };
        let mut https_addr = None;
        let mut https_task = None;
        if let (Some(https_bind), Some(cert)) = (config.https, &cert) {
            let tls = cert
                .server_config(&[b"h2".as_slice(), b"http/1.1".as_slice()])
                .map_err(std::io::Error::other)?;
            let tls_listener = bind(ListenerKind::Https, https_bind).await?;
            https_addr = Some(tls_listener.local_addr()?);
            https_task = Some(listen::serve(
                tls_listener,
                Some(tls),
                app.clone(),
                stop_rx.clone(),
            ));
        }
        let mut xmpp_addr = None;
        if let (Some(xmpp_bind), Some(cert)) = (config.xmpp, &cert) {
            // CCS is TLS from the first byte, without ALPN.
            let tls = cert.server_config(&[]).map_err(std::io::Error::other)?;
            xmpp_addr =
                Some(ccs::listener::start(xmpp_bind, tls, state.clone(), stop_rx.clone()).await?);
        }
        let http_task = listen::serve(listener, None, app, stop_rx);
        let task = tokio::spawn(async move {
            let _ = http_task.await;
            if let Some(https_task) = https_task {
                let _ = https_task.await;
            }
        });
        // The defaults below are the emulator's published test credentials (like a database
        // image's documented default password), not secrets: printing them is the point.
        tracing::info!(
            %addr,
            default_sender_id = DEFAULT_SENDER_ID,
            default_api_key = crate::DEFAULT_API_KEY,
            "emulator listening (HTTP/1.1 and h2c): legacy /gcm/send, /fcm/send; v1 /v1/projects/*/messages:send, /token; IID /iid/; control /emulator/"
        );
        tracing::info!(
            c2dm_account = DEFAULT_C2DM_EMAIL,
            c2dm_password = crate::DEFAULT_C2DM_PASSWORD,
            "C2DM: ClientLogin at /accounts/ClientLogin (service=ac2dm), send at /c2dm/send"
        );
        if let Some(https_addr) = https_addr {
            tracing::info!(%https_addr, "emulator listening (HTTPS, ALPN h2 and http/1.1)");
        }
        Ok(RunningEmulator {
            addr,
            https_addr,
            xmpp_addr,
            cert,
            state,
            stop: ShutdownHandle(Arc::new(stop_tx)),
            task,
        })
    }
}

/// A serving emulator instance; stop it with [`RunningEmulator::shutdown`].
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    xmpp_addr: Option<SocketAddr>,
    cert: Option<EmulatorCert>,
    state: EmulatorState,
    stop: ShutdownHandle,
    task: JoinHandle<()>,
}

/// Asks a running emulator to stop from elsewhere (a signal handler) while its owner
/// awaits [`RunningEmulator::wait`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Starts a graceful shutdown; [`RunningEmulator::wait`] returns once it is done.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

impl RunningEmulator {
    /// The address actually bound (useful when the config asked for port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base of every emulator URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTPS address actually bound, when `config.https` was set.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// `https://<addr>` when HTTPS is on: the base for clients that need TLS.
    pub fn https_base_url(&self) -> Option<String> {
        self.https_addr.map(|a| format!("https://{a}"))
    }

    /// The CCS (XMPP over TLS) address actually bound, when `config.xmpp` was set.
    pub fn xmpp_addr(&self) -> Option<SocketAddr> {
        self.xmpp_addr
    }

    /// The instance certificate in PEM (when HTTPS or XMPP is on), for clients to trust.
    pub fn tls_cert_pem(&self) -> Option<&str> {
        self.cert.as_ref().map(EmulatorCert::cert_pem)
    }

    /// The instance's state, for in-process inspection.
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// Stops accepting connections, lets open requests finish (up to a grace period), and
    /// returns when the server is down.
    pub async fn shutdown(self) {
        self.stop.shutdown();
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            tracing::warn!("emulator connections did not close in time; dropping them");
            task.abort();
        }
        tracing::info!(addr = %self.addr, "emulator stopped");
    }

    /// A handle that stops this instance from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Waits until the server stops: after [`ShutdownHandle::shutdown`] (e.g. from a signal
    /// handler) or a fatal server error.
    pub async fn wait(self) {
        // `self.stop` lives until the end: dropping every handle would stop the server.
        let _stop = self.stop;
        let _ = self.task.await;
        tracing::info!(addr = %self.addr, "emulator stopped");
    }
}
