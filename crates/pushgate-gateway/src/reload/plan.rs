//! What a reload changes: the running configuration compared with the one just read, before
//! anything is touched. Nothing here holds or shows a secret's value: keys are compared by
//! digest, credentials by fingerprint, settings by their `Debug` form (which prints secrets by
//! reference only).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{AppSpec, ChannelSpec, GatewaySpec, Secret};

/// An app's channel: (app, channel).
pub type ChannelKey = (String, String);

/// The changes between two configurations.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Apps only in the new configuration.
    pub apps_added: Vec<String>,
    /// Apps only in the running one.
    pub apps_removed: Vec<String>,
    /// Apps in both whose keys, channels or API settings differ.
    pub apps_changed: Vec<String>,
    /// Channels to start (of added apps, or new in a kept app).
    pub channels_added: Vec<ChannelKey>,
    /// Channels to stop (of removed apps, or gone from a kept app).
    pub channels_removed: Vec<ChannelKey>,
    /// Channels whose settings or credential differ: restarted after their in-flight batch.
    pub channels_changed: Vec<ChannelKey>,
    /// API keys added, removed or moved to another app, over every app.
    pub keys_changed: usize,
    /// Apps whose webhook was added, removed or changed: their sender is (re)started or
    /// stopped.
    pub webhooks_changed: Vec<String>,
    /// Admin keys added or removed.
    pub admin_keys_changed: usize,
    /// Settings that differ but only take effect at the next start, by config key.
    pub needs_restart: Vec<String>,
}

impl Plan {
    /// True when the new configuration changes nothing that a reload applies.
    pub fn is_empty(&self) -> bool {
        self.apps_added.is_empty()
            && self.apps_removed.is_empty()
            && self.apps_changed.is_empty()
            && self.webhooks_changed.is_empty()
            && self.admin_keys_changed == 0
    }
}

/// Compares the running configuration `old` with `new`.
pub fn plan(old: &GatewaySpec, new: &GatewaySpec) -> Plan {
    let old_apps: BTreeMap<&str, &AppSpec> =
        old.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let new_apps: BTreeMap<&str, &AppSpec> =
        new.apps.iter().map(|a| (a.name.as_str(), a)).collect();
    let mut plan = Plan {
        keys_changed: changed_count(&key_set(&old.apps), &key_set(&new.apps)),
        admin_keys_changed: changed_count(&digests(&old.admin_keys), &digests(&new.admin_keys)),
        needs_restart: service_differences(old, new),
        ..Plan::default()
    };
    for (name, app) in &new_apps {
        match old_apps.get(name) {
            None => {
                plan.apps_added.push(name.to_string());
                plan.channels_added
                    .extend(app.channels.iter().map(|c| key(name, c)));
                if app.webhook.is_some() {
                    plan.webhooks_changed.push(name.to_string());
                }
            }
            Some(before) => compare_app(&mut plan, before, app),
        }
    }
    for (name, app) in &old_apps {
        if !new_apps.contains_key(name) {
            plan.apps_removed.push(name.to_string());
            plan.channels_removed
                .extend(app.channels.iter().map(|c| key(name, c)));
            if app.webhook.is_some() {
                plan.webhooks_changed.push(name.to_string());
            }
        }
    }
    plan.webhooks_changed.sort();
    plan
}

/// Adds what differs between two versions of one app.
fn compare_app(plan: &mut Plan, before: &AppSpec, after: &AppSpec) {
    let name = &after.name;
    let mut changed = api_view(before) != api_view(after)
        || digests(&before.api_keys) != digests(&after.api_keys);
    for c in &after.channels {
        match before.channel(&c.name) {
            None => plan.channels_added.push(key(name, c)),
            Some(b) if channel_identity(b) != channel_identity(c) => {
                plan.channels_changed.push(key(name, c))
            }
            Some(_) => continue,
        }
        changed = true;
    }
    for c in &before.channels {
        if after.channel(&c.name).is_none() {
            plan.channels_removed.push(key(name, c));
            changed = true;
        }
    }
    if webhook_identity(before) != webhook_identity(after) {
        plan.webhooks_changed.push(name.clone());
        changed = true;
    }
    if changed {
        plan.apps_changed.push(name.clone());
    }
}

fn key(app: &str, c: &ChannelSpec) -> ChannelKey {
    (app.to_string(), c.name.clone())
}

/// What the API knows of an app besides its keys and channels.
fn api_view(app: &AppSpec) -> String {
    format!(
        "{}|{}|{:?}|{:?}",
        app.is_default, app.default_channel, app.c2dm_flow, app.key_rate
    )
}

/// A channel's settings and credential: equal when nothing a sender uses differs.
fn channel_identity(c: &ChannelSpec) -> String {
    format!("{c:?}|{}", c.credential.fingerprint())
}

fn webhook_identity(app: &AppSpec) -> Option<String> {
    app.webhook
        .as_ref()
        .map(|w| format!("{w:?}|{}", w.secret.fingerprint()))
}

/// Every API key by digest, with its app.
fn key_set(apps: &[AppSpec]) -> BTreeSet<([u8; 32], String)> {
    apps.iter()
        .flat_map(|a| {
            a.api_keys
                .iter()
                .map(|k| (crate::api::auth::digest(k.expose()), a.name.clone()))
        })
        .collect()
}

fn digests(keys: &[Secret]) -> BTreeSet<[u8; 32]> {
    keys.iter()
        .map(|k| crate::api::auth::digest(k.expose()))
        .collect()
}

/// Entries in one set and not the other.
fn changed_count<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> usize {
    a.symmetric_difference(b).count()
}

/// The service settings that differ: each only takes effect at the next start.
fn service_differences(old: &GatewaySpec, new: &GatewaySpec) -> Vec<String> {
    let limits = |s: &GatewaySpec| {
        let mut l = s.limits.clone();
        // Each app's key rate comes from here unless it sets its own; it is applied with
        // the app.
        l.key_rate = None;
        format!("{l:?}|{:?}", s.server)
    };
    let token = |s: &GatewaySpec| s.metrics.token.as_ref().map(Secret::fingerprint);
    let pairs: [(&str, bool); 10] = [
        ("listen", old.listen != new.listen),
        ("database", old.database != new.database),
        (
            "storage",
            format!("{:?}", old.storage) != format!("{:?}", new.storage),
        ),
        (
            "delivery",
            format!("{:?}", old.delivery) != format!("{:?}", new.delivery),
        ),
        ("limits", limits(old) != limits(new)),
        ("tls", old.tls != new.tls),
        ("metrics_listen", old.metrics.listen != new.metrics.listen),
        ("metrics_token", token(old) != token(new)),
        ("instance_id", old.instance_id != new.instance_id),
        // Read by the cleanup task at start (per-app limits included).
        ("retention", old.retention != new.retention),
    ];
    pairs
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name.to_string())
        .collect()
}
