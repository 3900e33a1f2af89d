//! Starting and stopping the whole gateway: the store (migrated), the apps and channels of
//! the configuration recorded in it, one worker per channel, and the HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;

use pushgate_store::{ChannelRecord, SqliteSettings, SqliteStore, Store, StoreError};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::api::{self, AppState, Apps};
use crate::channel::{self, ChannelError, ChannelHooks};
use crate::config::{ChannelSettings, GatewaySpec};
use crate::event_wakeup::EventWakeup;
use crate::http_server::{
    self,
    tls::{ReloadingCert, TlsError},
};
use crate::metrics::Metrics;
use crate::upstream::UpstreamHandler;
use crate::webhook::WebhookSender;
use crate::worker::{ChannelSet, Workers};

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
    sqlite: SqliteStore,
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

impl Gateway {
    /// Opens the store, records the configuration's apps and channels, starts the workers
    /// and serves the API on `spec.listen`.
    pub async fn start(spec: &GatewaySpec) -> Result<RunningGateway, StartError> {
        let settings = SqliteSettings {
            busy_timeout: spec.storage.busy_timeout,
            durable_commits: spec.storage.durable_commits,
            ..SqliteSettings::default()
        };
        let store_error = |source| StartError::Store {
            database: spec.database.clone(),
            source,
        };
        let sqlite = SqliteStore::open_with(&spec.database, &settings)
            .await
            .map_err(store_error)?;
        let store: Arc<dyn Store> = Arc::new(sqlite.clone());
        let now = OffsetDateTime::now_utc();
        let events_wakeup = EventWakeup::default();
        let metrics = Arc::new(Metrics::new());
        let mut channels = ChannelSet::default();
        let mut upstreams = Vec::new();
        for app in &spec.apps {
            store
                .upsert_app(&app.name, app.is_default)
                .await
                .map_err(store_error)?;
            let records: Vec<ChannelRecord> = app
                .channels
                .iter()
                .map(|c| ChannelRecord {
                    name: c.name.clone(),
                    kind: c.kind().as_str().to_string(),
                    is_default: c.name == app.default_channel,
                    endpoint: c.endpoint.clone(),
                    credential_ref: c.credential.reference().to_string(),
                    credential_fingerprint: c.credential.fingerprint(),
                })
                .collect();
            store
                .sync_channels(&app.name, &records, now)
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
        let workers = Workers::start(
            &channels,
            store.clone(),
            &spec.delivery,
            metrics.clone(),
            events_wakeup.clone(),
        );
        let stop_background = CancellationToken::new();
        let mut background = JoinSet::new();
        let echo_ttl = u32::try_from(spec.delivery.default_ttl.as_secs()).unwrap_or(u32::MAX);
        for (app, channel, echo, rx) in upstreams {
            let handler = UpstreamHandler {
                app,
                channel,
                echo,
                echo_ttl,
                store: store.clone(),
                events_wakeup: events_wakeup.clone(),
                channels: channels.clone(),
                metrics: metrics.clone(),
                stop: stop_background.clone(),
            };
            background.spawn(handler.run(rx));
        }
        for (app, name, entry) in channels.iter() {
            if !entry.channel.is_persistent() {
                continue;
            }
            let (app, name, entry) = (app.to_string(), name.to_string(), entry.clone());
            let stop = stop_background.clone();
            background.spawn(async move {
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
            });
        }
        let owner = format!("gw-{}", uuid::Uuid::now_v7());
        let mut webhook_urls = HashMap::new();
        for app in &spec.apps {
            if let Some(hook) = &app.webhook {
                webhook_urls.insert(app.name.clone(), hook.url.clone());
                let sender = WebhookSender {
                    app: app.name.clone(),
                    spec: hook.clone(),
                    store: store.clone(),
                    events_wakeup: events_wakeup.clone(),
                    owner: owner.clone(),
                    retry: (spec.delivery.retry_initial, spec.delivery.retry_max),
                    stop: stop_background.clone(),
                };
                background.spawn(sender.run());
            }
        }
        let state = AppState {
            store: store.clone(),
            apps: Arc::new(Apps::from_specs(&spec.apps)),
            channels: channels.clone(),
            limits: spec.limits.clone(),
            delivery: spec.delivery.clone(),
            events_wakeup,
            metrics: metrics.clone(),
            webhook_apps: webhook_urls.keys().cloned().collect(),
            webhook_urls: Arc::new(webhook_urls),
            openapi: Arc::default(),
        };
        let listener = TcpListener::bind(spec.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: spec.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: spec.listen,
            source,
        })?;
        let stop_http = CancellationToken::new();
        let stop = stop_http.clone();
        let app = api::router(state);
        let tls = match &spec.tls {
            None => None,
            Some(files) => {
                let cert = ReloadingCert::new(files.clone()).map_err(StartError::Tls)?;
                let acceptor = cert.acceptor().map_err(StartError::Tls)?;
                background.spawn(cert.clone().watch(stop_background.clone()));
                Some(acceptor)
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = tokio::spawn(http_server::serve(
            listener,
            app,
            spec.server.clone(),
            tls,
            stop,
        ));
        tracing::info!(%addr, database = %spec.database, apps = spec.apps.len(), "gateway listening");
        Ok(RunningGateway {
            addr,
            sqlite,
            store,
            channels,
            workers,
            stop_http,
            server,
            stop_background,
            background,
            scheme,
            metrics,
        })
    }
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
        self.sqlite.close().await;
        tracing::info!("gateway stopped");
    }
}
