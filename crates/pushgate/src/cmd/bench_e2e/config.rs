//! The `pushgate.toml` of a spawned benchmark gateway: the sandbox's app and channels (what
//! `pushgate serve` without a configuration builds with `sandbox_spec`), pointed at the
//! benchmark's emulator, with the benchmark's delivery settings and storage options.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use pushgate_emulator::{
    DEFAULT_API_KEY, DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD, DEFAULT_SENDER_ID,
};
use pushgate_gateway::config::DeliverySettings;
use pushgate_gateway::sandbox::SANDBOX_APP;

/// What the gateway's channels need to know of the emulator.
pub(super) struct EmulatorRef<'a> {
    /// Base URL of its HTTP listener.
    pub(super) base: &'a str,
    /// Its CCS address, if it has one.
    pub(super) xmpp: Option<SocketAddr>,
    /// Its TLS certificate (PEM file), trusted by the CCS channel.
    pub(super) ca: Option<&'a Path>,
    /// Its default project's service-account key file.
    pub(super) key_file: &'a Path,
}

/// Settings of the gateway besides its emulator.
pub(super) struct GatewayOptions<'a> {
    /// `listen`.
    pub(super) listen: SocketAddr,
    /// `database` (a SQLite path or a database URL).
    pub(super) database: &'a str,
    /// The file holding the app's API key (the configuration only names it).
    pub(super) api_key_file: &'a Path,
    /// `storage.durable_commits`.
    pub(super) durable_commits: bool,
    /// `[delivery]`.
    pub(super) delivery: &'a DeliverySettings,
    /// Keep only this channel, and make it the default (`--sole-channel`).
    pub(super) sole_channel: Option<&'a str>,
    /// More top-level TOML (tables such as `[retention]`), appended as is.
    pub(super) extra: &'a str,
}

/// A TOML basic string (JSON's string escapes are valid TOML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A duration as the configuration writes it (`250ms`).
fn dur(d: std::time::Duration) -> String {
    q(&format!("{}ms", d.as_millis()))
}

/// The configuration file's text.
pub(super) fn gateway_toml(emu: &EmulatorRef<'_>, opts: &GatewayOptions<'_>) -> String {
    let base = emu.base.trim_end_matches('/');
    let d = opts.delivery;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `pushgate bench e2e`: the sandbox against its emulator."
    );
    let _ = writeln!(t, "listen = {}", q(&opts.listen.to_string()));
    let _ = writeln!(t, "database = {}", q(opts.database));
    let _ = writeln!(t, "\n[storage]\ndurable_commits = {}", opts.durable_commits);
    let _ = writeln!(
        t,
        "\n[delivery]\nidle_poll = {}\nretry_initial = {}\nretry_max = {}\nlease = {}\nclaim_batch = {}",
        dur(d.idle_poll),
        dur(d.retry_initial),
        dur(d.retry_max),
        dur(d.lease),
        d.claim_batch
    );
    let mut channels: Vec<(&str, String)> = vec![
        (
            "fcm",
            format!(
                "kind = \"fcm_v1\"\nservice_account = {}\nbase_url = {}\nhttp2_prior_knowledge = true\nconnections = 2\nmax_in_flight = {}\n",
                q(&emu.key_file.to_string_lossy()),
                q(base),
                pushgate_client::v1::DEFAULT_MAX_IN_FLIGHT
            ),
        ),
        (
            "legacy",
            format!(
                "kind = \"legacy\"\napi_key = {}\nendpoint = {}\nformat = \"json\"\nmax_in_flight = 32\n",
                q(DEFAULT_API_KEY),
                q(&format!("{base}/gcm/send"))
            ),
        ),
        (
            "c2dm",
            format!(
                "kind = \"c2dm\"\nemail = {}\npassword = {}\nendpoint = {}\nlogin_url = {}\nmax_in_flight = 8\n",
                q(DEFAULT_C2DM_EMAIL),
                q(DEFAULT_C2DM_PASSWORD),
                q(&format!("{base}/c2dm/send")),
                q(&format!("{base}/accounts/ClientLogin"))
            ),
        ),
    ];
    if let Some(xmpp) = emu.xmpp {
        let mut ccs = format!(
            "kind = \"ccs\"\napi_key = {}\nsender_id = {}\nhost = {}\nconnections = 1\nwindow = 100\necho = false\nreceipts = false\n",
            q(DEFAULT_API_KEY),
            q(DEFAULT_SENDER_ID),
            q(&xmpp.to_string())
        );
        if let Some(ca) = emu.ca {
            let _ = writeln!(ccs, "ca = {}", q(&ca.to_string_lossy()));
        }
        channels.push(("xmpp", ccs));
    }
    let default_channel = match opts.sole_channel {
        Some(name) => {
            channels.retain(|(n, _)| *n == name);
            name
        }
        None => "fcm",
    };
    let flow = if channels.iter().any(|(n, _)| *n == "c2dm") {
        "c2dm"
    } else {
        default_channel
    };
    let _ = writeln!(
        t,
        "\n[apps.{SANDBOX_APP}]\ndefault = true\napi_keys = [{}]\ndefault_channel = {}\nc2dm_flow = {{ channel = {} }}",
        q(&format!("file:{}", opts.api_key_file.display())),
        q(default_channel),
        q(flow)
    );
    for (name, body) in channels {
        let _ = writeln!(t, "\n[apps.{SANDBOX_APP}.channels.{name}]\n{body}");
    }
    if !opts.extra.is_empty() {
        let _ = writeln!(t, "\n{}", opts.extra);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_emulator::{Emulator, EmulatorConfig};
    use pushgate_gateway::config::{ConfigFile, Secret, ServiceSettings};
    use pushgate_gateway::sandbox::sandbox_spec;

    /// The file, read back as `pushgate serve --config` reads it, resolves to exactly the
    /// channels `pushgate serve` builds for its sandbox against the same emulator.
    #[tokio::test]
    async fn the_file_resolves_to_the_sandbox_channels() {
        let emulator = Emulator::start(EmulatorConfig {
            http: "127.0.0.1:0".parse().unwrap(),
            xmpp: Some("127.0.0.1:0".parse().unwrap()),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = emulator.base_url();
        let described = crate::support::sandbox_emulator::describe(
            &http,
            &base,
            emulator.xmpp_addr(),
            emulator.tls_cert_pem().map(str::to_string),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key.json");
        std::fs::write(&key_file, &described.service_account_json).unwrap();
        let ca = dir.path().join("emulator.pem");
        std::fs::write(&ca, described.cert_pem.as_deref().unwrap()).unwrap();
        let delivery = DeliverySettings::default();
        let api_key_file = dir.path().join("api-key");
        std::fs::write(&api_key_file, "bench-test-key-0123456789").unwrap();
        let text = gateway_toml(
            &EmulatorRef {
                base: &base,
                xmpp: emulator.xmpp_addr(),
                ca: Some(&ca),
                key_file: &key_file,
            },
            &GatewayOptions {
                listen: "127.0.0.1:1".parse().unwrap(),
                database: "bench.db",
                api_key_file: &api_key_file,
                durable_commits: false,
                delivery: &delivery,
                sole_channel: None,
                extra: "",
            },
        );
        let path = dir.path().join("pushgate.toml");
        std::fs::write(&path, &text).unwrap();
        let resolved = ConfigFile::load(Some(&path)).unwrap().resolve().unwrap();
        let sandbox = sandbox_spec(
            ServiceSettings::default(),
            Secret::new("k", "test"),
            &described,
        );
        assert_eq!(resolved.database, "bench.db");
        assert!(!resolved.storage.durable_commits);
        let (got, want) = (&resolved.apps[0], &sandbox.apps[0]);
        assert_eq!(resolved.apps.len(), 1);
        assert_eq!(got.name, want.name);
        assert_eq!(got.is_default, want.is_default);
        assert_eq!(got.default_channel, want.default_channel);
        assert_eq!(got.c2dm_flow.channel, want.c2dm_flow.channel);
        assert_eq!(got.api_keys.len(), 1);
        assert_eq!(got.api_keys[0].expose(), "bench-test-key-0123456789");
        let names = |a: &pushgate_gateway::config::AppSpec| {
            let mut n: Vec<String> = a.channels.iter().map(|c| c.name.clone()).collect();
            n.sort();
            n
        };
        assert_eq!(names(got), names(want));
        assert_eq!(names(got), ["c2dm", "fcm", "legacy", "xmpp"]);
        for w in &want.channels {
            let g = got.channels.iter().find(|c| c.name == w.name).unwrap();
            assert_eq!(g.endpoint, w.endpoint, "{}", w.name);
            assert_eq!(g.max_in_flight, w.max_in_flight, "{}", w.name);
            assert_eq!(g.credential.expose(), w.credential.expose(), "{}", w.name);
            assert_eq!(
                format!("{:?}", g.settings),
                format!("{:?}", w.settings),
                "{}",
                w.name
            );
        }
        emulator.shutdown().await;
    }
}
