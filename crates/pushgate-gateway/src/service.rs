//! Starting and stopping the whole gateway: the store (migrated), the apps and channels of
//! the configuration recorded in it, one worker per channel, and the HTTP API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushgate_client::ccs::Upstream;
use pushgate_store::{ChannelRecord, Store, StoreError};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, Apps};
use crate::channel::{self, ChannelError, ChannelHooks};
use crate::cluster;
use crate::config::{AppSpec, ChannelSettings, GatewaySpec};
use crate::console::Console;
use crate::event_wakeup::EventWakeup;
use crate::http_server::{
    self,
    tls::{ReloadingCert, TlsError},
};
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::upstream::UpstreamHandler;
use crate::webhook::WebhookSender;
use crate::worker::{ChannelEntry, ChannelSet, Workers};

/// Upstream items waiting for their handler, per CCS channel.
const UPSTREAM_QUEUE: usize = 256;
/// How often a persistent channel (CCS) is reopened after its connection was lost.
const REOPEN: Duration = Duration::from_secs(5);

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
    workers: Workers,
    stop_http: CancellationToken,
    server: JoinHandle<()>,
    stop_background: CancellationToken,
    background: JoinSet<()>,
    scheme: &'static str,
    metrics: Arc<Metrics>,
}

/// A CCS channel's upstream feed, waiting for its handler: (app, channel, echo, receiver).
type UpstreamFeed = (String, String, bool, mpsc::Receiver<Upstream>);

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
    /// and serves the API on `spec.listen`.
    pub async fn start(spec: &GatewaySpec) -> Result<RunningGateway, StartError> {
        let store = open_store(spec).await?;
        let (channels, upstreams) = record_apps_and_build_channels(spec, &*store).await?;
        let events_wakeup = EventWakeup::default();
        let metrics = Arc::new(Metrics::new());
        let instance = cluster::instance_id(spec.instance_id.as_deref());
        metrics.instance.set_id(&instance);
        let workers = Workers::start(
            &channels,
            store.clone(),
            &spec.delivery,
            metrics.clone(),
            events_wakeup.clone(),
        );
        let mut background = Background {
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        let shared = Shared {
            store: &store,
            channels: &channels,
            events_wakeup: &events_wakeup,
            metrics: &metrics,
            instance: &instance,
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
        start_upstream_handlers(spec, &shared, upstreams, &mut background);
        start_channel_reopeners(&channels, &mut background);
        let (webhook_urls, webhook_nudges) = start_webhook_senders(spec, &shared, &mut background);
        background.tasks.spawn(
            Retention {
                store: store.clone(),
                settings: spec.retention.clone(),
                stop: background.stop.clone(),
            }
            .run(),
        );
        let state = api_state(spec, &shared, webhook_urls, webhook_nudges);
        let served = serve_api(spec, state, &mut background).await?;
        tracing::info!(instance = %instance, addr = %served.addr, database = %pushgate_store::redacted(&spec.database), apps = spec.apps.len(), "gateway listening");
        Ok(RunningGateway {
            addr: served.addr,
            store,
            channels,
            workers,
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
    /// This instance's id (the owner of the leases it takes).
    instance: &'a str,
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

/// Records every configured app and its channels in the store and builds the channels; CCS
/// channels get an upstream feed, returned for their handlers.
async fn record_apps_and_build_channels(
    spec: &GatewaySpec,
    store: &dyn Store,
) -> Result<(ChannelSet, Vec<UpstreamFeed>), StartError> {
    let store_error = |source| StartError::Store {
        database: pushgate_store::redacted(&spec.database),
        source,
    };
    let now = OffsetDateTime::now_utc();
    let mut channels = ChannelSet::default();
    let mut upstreams = Vec::new();
    for app in &spec.apps {
        store
            .upsert_app(&app.name, app.is_default)
            .await
            .map_err(store_error)?;
        store
            .sync_channels(&app.name, &channel_records(app), now)
            .await
            .map_err(store_error)?;
        for c in &app.channels {
            let mut hooks = ChannelHooks::default();
            if let ChannelSettings::Ccs { echo, .. } = &c.settings {
                let (tx, rx) = mpsc::channel(UPSTREAM_QUEUE);
                hooks.upstream = Some(tx);
                upstreams.push((app.name.clone(), c.name.clone(), *echo, rx));
            }
            let built = channel::build(c, hooks).map_err(|source| StartError::Channel {
                app: app.name.clone(),
                source,
            })?;
            channels.insert(&app.name, &c.name, built);
        }
    }
    Ok((channels, upstreams))
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

/// One handler per CCS channel for the upstream messages and receipts it receives.
fn start_upstream_handlers(
    spec: &GatewaySpec,
    shared: &Shared<'_>,
    upstreams: Vec<UpstreamFeed>,
    background: &mut Background,
) {
    let echo_ttl = u32::try_from(spec.delivery.default_ttl.as_secs()).unwrap_or(u32::MAX);
    for (app, channel, echo, rx) in upstreams {
        let handler = UpstreamHandler {
            app,
            channel,
            echo,
            echo_ttl,
            store: shared.store.clone(),
            events_wakeup: shared.events_wakeup.clone(),
            channels: shared.channels.clone(),
            metrics: shared.metrics.clone(),
            stop: background.stop.clone(),
        };
        background.tasks.spawn(handler.run(rx));
    }
}

/// Keeps every persistent channel (CCS) open: reopens it every [`REOPEN`] until shutdown.
fn start_channel_reopeners(channels: &ChannelSet, background: &mut Background) {
    for (app, name, entry) in channels.iter() {
        if !entry.channel.is_persistent() {
            continue;
        }
        let (app, name, entry) = (app.to_string(), name.to_string(), entry.clone());
        let stop = background.stop.clone();
        background.tasks.spawn(keep_open(app, name, entry, stop));
    }
}

/// Opens one persistent channel, and again after each loss, until `stop`.
async fn keep_open(app: String, name: String, entry: ChannelEntry, stop: CancellationToken) {
    loop {
        if let Err(e) = entry.channel.open().await {
            tracing::warn!(%app, channel = %name, error = %e, "cannot open the channel");
            entry.status.error(OffsetDateTime::now_utc(), e);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REOPEN) => {}
        }
    }
}

/// One webhook sender per app that has a webhook; returns the apps' webhook URLs and what
/// asks each sender to try again now.
fn start_webhook_senders(
    spec: &GatewaySpec,
    shared: &Shared<'_>,
    background: &mut Background,
) -> (HashMap<String, String>, HashMap<String, Arc<Notify>>) {
    let owner = shared.instance.to_string();
    let mut webhook_urls = HashMap::new();
    let mut nudges = HashMap::new();
    for app in &spec.apps {
        if let Some(hook) = &app.webhook {
            webhook_urls.insert(app.name.clone(), hook.url.clone());
            let retry_now = Arc::new(Notify::new());
            nudges.insert(app.name.clone(), retry_now.clone());
            let sender = WebhookSender {
                app: app.name.clone(),
                spec: hook.clone(),
                store: shared.store.clone(),
                events_wakeup: shared.events_wakeup.clone(),
                owner: owner.clone(),
                retry: (spec.delivery.retry_initial, spec.delivery.retry_max),
                stop: background.stop.clone(),
                retry_now,
            };
            background.tasks.spawn(sender.run());
        }
    }
    (webhook_urls, nudges)
}

/// What the API handlers share.
fn api_state(
    spec: &GatewaySpec,
    shared: &Shared<'_>,
    webhook_urls: HashMap<String, String>,
    webhook_nudges: HashMap<String, Arc<Notify>>,
) -> AppState {
    let console = Console::new(&spec.admin_keys, spec.tls.is_some(), webhook_nudges);
    AppState {
        store: shared.store.clone(),
        apps: Arc::new(Apps::from_specs(&spec.apps)),
        channels: shared.channels.clone(),
        limits: spec.limits.clone(),
        delivery: spec.delivery.clone(),
        events_wakeup: shared.events_wakeup.clone(),
        metrics: shared.metrics.clone(),
        webhook_apps: webhook_urls.keys().cloned().collect(),
        webhook_urls: Arc::new(webhook_urls),
        openapi: Arc::default(),
        metrics_access: spec.metrics.clone(),
        console: Arc::new(console),
        retention: Arc::new(spec.retention.clone()),
    }
}

/// Binds the API address and serves the API (over TLS when configured, its certificate
/// watched for renewal) until its stop token is cancelled.
async fn serve_api(
    spec: &GatewaySpec,
    state: AppState,
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
            background
                .tasks
                .spawn(cert.clone().watch(background.stop.clone()));
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

    /// Stops taking requests, lets the workers finish or release what is in flight, and
    /// closes the database.
    pub async fn shutdown(mut self) {
        self.stop_http.cancel();
        let _ = self.server.await;
        self.workers.shutdown().await;
        // Upstream items not yet recorded stay unacked: CCS redelivers them.
        self.stop_background.cancel();
        let drain = async { while self.background.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            self.background.abort_all();
            while self.background.join_next().await.is_some() {}
        }
        self.store.close().await;
        tracing::info!("gateway stopped");
    }
}
