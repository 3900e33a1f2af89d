//! Starting and stopping the whole gateway: the store (migrated), the apps and channels of
//! the configuration recorded in it, one worker per channel, and the HTTP API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushgate_store::{ChannelRecord, Store, StoreError};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, Apps};
use crate::channel::ChannelError;
use crate::cluster;
use crate::config::{AppSpec, GatewaySpec};
use crate::console::Console;
use crate::event_wakeup::EventWakeup;
use crate::fanout::Fanout;
use crate::http_server::{
    self,
    tls::{ReloadingCert, TlsError},
};
use crate::metrics::Metrics;
use crate::reload::channels::{self as channel_parts, ChannelRuntime};
use crate::reload::webhooks::WebhookRuntime;
use crate::reload::{ConfigSource, Hangups, KeyedTasks, ReloadError, ReloadReport, Reloader};
use crate::retention::Retention;
use crate::worker::{ChannelSet, Workers};

/// How long background tasks may take to end at shutdown before they are aborted.
const BACKGROUND_DRAIN: Duration = Duration::from_secs(5);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {database}: {source}")]
    Store {
        /// The configured database.
        database: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// A channel could not be built from its configuration.
    #[error("app {app}: {source}")]
    Channel {
        /// The app.
        app: String,
        /// What failed.
        #[source]
        source: ChannelError,
    },
    /// The TLS certificate or key could not be used.
    #[error("tls: {0}")]
    Tls(#[source] TlsError),
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// Entry point.
#[derive(Debug)]
pub struct Gateway;

/// A started gateway.
pub struct RunningGateway {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    channels: ChannelSet,
    reloader: Arc<Reloader>,
    stop_http: CancellationToken,
    server: JoinHandle<()>,
    stop_background: CancellationToken,
    background: JoinSet<()>,
    scheme: &'static str,
    metrics: Arc<Metrics>,
}

/// The tasks that run beside the workers until shutdown (upstream handlers, channel
/// reopeners, webhook senders), stopped by one token.
struct Background {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// The API server, running.
struct Served {
    addr: SocketAddr,
    /// `http`, or `https` with TLS.
    scheme: &'static str,
    stop: CancellationToken,
    server: JoinHandle<()>,
}

impl Gateway {
    /// Opens the store, records the configuration's apps and channels, starts the workers
    /// and serves the API on `spec.listen`. Without a configuration source a reload
    /// (SIGHUP, `POST /v1/admin/reload`) has nothing to read and changes nothing.
    pub async fn start(spec: &GatewaySpec) -> Result<RunningGateway, StartError> {
        Self::start_reloadable(spec, None).await
    }

    /// Like [`start`](Self::start), and a reload applies what `source` reads then.
    pub async fn start_reloadable(
        spec: &GatewaySpec,
        source: Option<ConfigSource>,
    ) -> Result<RunningGateway, StartError> {
        let store = open_store(spec).await?;
        record_apps(spec, &*store)
            .await
            .map_err(|source| store_error(spec, source))?;
        let events_wakeup = EventWakeup::default();
        let metrics = Arc::new(Metrics::new());
        let instance = cluster::instance_id(spec.instance_id.as_deref());
        metrics.instance.set_id(&instance);
        let mut background = Background {
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        let channels = ChannelSet::default();
        let runtime = ChannelRuntime {
            store: store.clone(),
            channels: channels.clone(),
            events_wakeup: events_wakeup.clone(),
            metrics: metrics.clone(),
            echo_ttl: u32::try_from(spec.delivery.default_ttl.as_secs()).unwrap_or(u32::MAX),
            stop: background.stop.clone(),
        };
        let companions = start_channels(spec, &runtime)?;
        let workers = Workers::start(
            &channels,
            store.clone(),
            &spec.delivery,
            metrics.clone(),
            events_wakeup.clone(),
        );
        background.tasks.spawn(
            Fanout {
                store: store.clone(),
                channels: channels.clone(),
                stop: background.stop.clone(),
            }
            .run(),
        );
        let shared = Shared {
            store: &store,
            channels: &channels,
            events_wakeup: &events_wakeup,
            metrics: &metrics,
        };
        background.tasks.spawn(
            cluster::Heartbeat {
                id: instance.clone(),
                store: store.clone(),
                channels: channels.clone(),
                metrics: metrics.clone(),
                stop: background.stop.clone(),
            }
            .run(),
        );
        let webhooks = WebhookRuntime {
            store: store.clone(),
            events_wakeup: events_wakeup.clone(),
            owner: instance.clone(),
            retry: (spec.delivery.retry_initial, spec.delivery.retry_max),
            stop: background.stop.clone(),
        };
        let mut senders = KeyedTasks::default();
        let mut webhook_nudges = HashMap::new();
        for app in &spec.apps {
            if let Some(nudge) = webhooks.start(app, &mut senders).await {
                webhook_nudges.insert(app.name.clone(), nudge);
            }
        }
        let apps = Arc::new(Apps::from_specs(&spec.apps));
        let console = Arc::new(Console::new(
            &spec.admin_keys,
            spec.tls.is_some(),
            webhook_nudges,
        ));
        let reloader = Arc::new(Reloader::new(
            source,
            spec.clone(),
            (runtime, webhooks),
            (apps.clone(), console.clone()),
            (workers, companions, senders),
        ));
        let hangups = Hangups::listen(background.stop.clone());
        background.tasks.spawn(
            reloader
                .clone()
                .follow(hangups.clone(), background.stop.clone()),
        );
        background.tasks.spawn(
            Retention {
                store: store.clone(),
                settings: spec.retention.clone(),
                stop: background.stop.clone(),
            }
            .run(),
        );
        let state = api_state(spec, &shared, (apps, console), &reloader);
        let served = serve_api(spec, state, &hangups, &mut background).await?;
        tracing::info!(instance = %instance, addr = %served.addr, database = %pushgate_store::redacted(&spec.database), apps = spec.apps.len(), "gateway listening");
        Ok(RunningGateway {
            addr: served.addr,
            store,
            channels,
            reloader,
            stop_http: served.stop,
            server: served.server,
            stop_background: background.stop,
            background: background.tasks,
            scheme: served.scheme,
            metrics,
        })
    }
}

/// What the background tasks share with the workers and the API.
struct Shared<'a> {
    store: &'a Arc<dyn Store>,
    channels: &'a ChannelSet,
    events_wakeup: &'a EventWakeup,
    metrics: &'a Arc<Metrics>,
}

/// Opens (and migrates) the store the configured database names.
async fn open_store(spec: &GatewaySpec) -> Result<Arc<dyn Store>, StartError> {
    pushgate_store::open(&spec.database, &spec.storage.store_settings())
        .await
        .map_err(|source| StartError::Store {
            database: pushgate_store::redacted(&spec.database),
            source,
        })
}

fn store_error(spec: &GatewaySpec, source: StoreError) -> StartError {
    StartError::Store {
        database: pushgate_store::redacted(&spec.database),
        source,
    }
}

/// Records every configured app and its channels in the store (at start, and at each
/// reload for the apps it then has; a removed app's records and work stay).
pub(crate) async fn record_apps(spec: &GatewaySpec, store: &dyn Store) -> Result<(), StoreError> {
    let now = OffsetDateTime::now_utc();
    for app in &spec.apps {
        store.upsert_app(&app.name, app.is_default).await?;
        store
            .sync_channels(&app.name, &channel_records(app), now)
            .await?;
    }
    Ok(())
}

/// Builds every configured channel, puts it in the channel set and starts the tasks beside
/// its worker (CCS: upstream handler, reopener).
fn start_channels(
    spec: &GatewaySpec,
    runtime: &ChannelRuntime,
) -> Result<KeyedTasks<(String, String)>, StartError> {
    let mut companions = KeyedTasks::default();
    for app in &spec.apps {
        for c in &app.channels {
            let prepared =
                channel_parts::prepare(&app.name, c).map_err(|source| StartError::Channel {
                    app: app.name.clone(),
                    source,
                })?;
            runtime.install(prepared, &mut companions);
        }
    }
    Ok(companions)
}

/// The app's configured channels as the store records them.
fn channel_records(app: &AppSpec) -> Vec<ChannelRecord> {
    app.channels
        .iter()
        .map(|c| ChannelRecord {
            name: c.name.clone(),
            kind: c.kind().as_str().to_string(),
            is_default: c.name == app.default_channel,
            endpoint: c.endpoint.clone(),
            credential_ref: c.credential.reference().to_string(),
            credential_fingerprint: c.credential.fingerprint(),
        })
        .collect()
}

/// What the API handlers share.
fn api_state(
    spec: &GatewaySpec,
    shared: &Shared<'_>,
    (apps, console): (Arc<Apps>, Arc<Console>),
    reloader: &Arc<Reloader>,
) -> AppState {
    AppState {
        store: shared.store.clone(),
        apps,
        channels: shared.channels.clone(),
        limits: spec.limits.clone(),
        delivery: spec.delivery.clone(),
        events_wakeup: shared.events_wakeup.clone(),
        metrics: shared.metrics.clone(),
        openapi: Arc::default(),
        metrics_access: spec.metrics.clone(),
        console,
        reloader: Some(reloader.clone()),
        retention: Arc::new(spec.retention.clone()),
    }
}

/// Binds the API address and serves the API (over TLS when configured, its certificate
/// watched for renewal) until its stop token is cancelled.
async fn serve_api(
    spec: &GatewaySpec,
    state: AppState,
    hangups: &Hangups,
    background: &mut Background,
) -> Result<Served, StartError> {
    let listen = spec.listen;
    let bind_error = |source| StartError::Bind {
        addr: listen,
        source,
    };
    let tls = match &spec.tls {
        None => None,
        Some(files) => {
            let cert = ReloadingCert::new(files.clone()).map_err(StartError::Tls)?;
            let acceptor = cert.acceptor().map_err(StartError::Tls)?;
            background.tasks.spawn(
                cert.clone()
                    .watch(background.stop.clone(), hangups.subscribe()),
            );
            Some(acceptor)
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(metrics_listen) = spec.metrics.listen {
        serve_metrics(metrics_listen, spec, &state, background).await?;
    } else if spec.metrics.token.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "/metrics (every app's names and counts) is open to anyone who reaches this \
             address; set metrics_token or metrics_listen"
        );
    }
    let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let stop = CancellationToken::new();
    let server = tokio::spawn(http_server::serve(
        listener,
        api::router(state),
        spec.server.clone(),
        tls,
        stop.clone(),
    ));
    Ok(Served {
        addr,
        scheme,
        stop,
        server,
    })
}

/// Serves `/metrics` (and `/healthz`) on their own listener, stopped with the background
/// tasks.
async fn serve_metrics(
    addr: SocketAddr,
    spec: &GatewaySpec,
    state: &AppState,
    background: &mut Background,
) -> Result<(), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    tracing::info!(%addr, "metrics listening");
    background.tasks.spawn(http_server::serve(
        listener,
        api::metrics_router(state.clone()),
        spec.server.clone(),
        None,
        background.stop.clone(),
    ));
    Ok(())
}

impl RunningGateway {
    /// The bound API address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, or `https://addr` with TLS.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The store it runs on.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Its channels (status, wake-ups).
    pub fn channels(&self) -> &ChannelSet {
        &self.channels
    }

    /// Reads the configuration again and applies it, as SIGHUP and `POST /v1/admin/reload`
    /// do.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.reloader.reload("call").await
    }

    /// Stops taking requests, lets the workers finish or release what is in flight, and
    /// closes the database.
    pub async fn shutdown(mut self) {
        self.stop_http.cancel();
        let _ = self.server.await;
        // Upstream items not yet recorded stay unacked: CCS redelivers them.
        self.reloader.shutdown(BACKGROUND_DRAIN).await;
        self.stop_background.cancel();
        let drain = async { while self.background.join_next().await.is_some() {} };
        if tokio::time::timeout(BACKGROUND_DRAIN, drain).await.is_err() {
            self.background.abort_all();
            while self.background.join_next().await.is_some() {}
        }
        self.store.close().await;
        tracing::info!("gateway stopped");
    }
}
