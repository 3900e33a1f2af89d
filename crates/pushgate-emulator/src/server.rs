//! Starting, serving and stopping the emulator (HTTP/1.1 and h2c on one port).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::EmulatorConfig;
use crate::state::EmulatorState;
use crate::{DEFAULT_SENDER_ID, control, legacy};

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
        .nest("/emulator", control::routes())
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Entry point: starts an emulator instance.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Binds `config.http` and serves the emulator in the background until
    /// [`RunningEmulator::shutdown`].
    pub async fn start(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
        let listener = TcpListener::bind(config.http).await?;
        let addr = listener.local_addr()?;
        let state = EmulatorState::new(&config);
        let app = router(state.clone());
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let listener = listener.tap_io(|tcp| {
            // Small request/response pairs: do not let Nagle hold them back.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // Every handle dropped also means stop.
                let _ = stop_rx.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "emulator server failed");
            }
        });
        tracing::info!(
            %addr,
            default_sender_id = DEFAULT_SENDER_ID,
            "emulator listening (HTTP/1.1 and h2c): legacy /gcm/send, /fcm/send; control /emulator/"
        );
        Ok(RunningEmulator {
            addr,
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
