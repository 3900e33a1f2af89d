//! The gateway's one SIGHUP listener. The configuration reload and the TLS certificate both
//! act on SIGHUP; each follows this listener's count instead of installing a handler of its
//! own. Listening also replaces SIGHUP's default action (ending the process) for as long as
//! the process runs, with or without TLS.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Counts the SIGHUPs received; subscribers wake on each.
#[derive(Debug, Clone)]
pub struct Hangups {
    count: watch::Sender<u64>,
}

impl Hangups {
    /// Starts listening for SIGHUP until `stop`, in a task of its own.
    pub fn listen(stop: CancellationToken) -> Self {
        let (count, _) = watch::channel(0u64);
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut signal) => {
                let count = count.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            received = signal.recv() => match received {
                                Some(()) => count.send_modify(|n| *n += 1),
                                None => return,
                            },
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /v1/admin/reload")
            }
        }
        #[cfg(not(unix))]
        drop(stop);
        Self { count }
    }

    /// A receiver that wakes at the next SIGHUP (not at those already received).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }
}

/// Waits for the next SIGHUP on `rx`; never resolves once the listener is gone.
pub async fn next(rx: &mut watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
