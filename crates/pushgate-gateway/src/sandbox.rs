//! The sandbox: what `pushgate serve` runs with no configuration. One default app,
//! `sandbox`, with a channel of every protocol pointed at an emulator, so that the whole
//! path can be tried on one machine without a Google account.

use std::net::SocketAddr;

use pushgate_client::HttpConfig;

use crate::config::{
    AppSpec, C2dmFlowSpec, ChannelSettings, ChannelSpec, GatewaySpec, LegacyFormat, Secret,
    ServiceSettings,
};

/// Name of the sandbox app.
pub const SANDBOX_APP: &str = "sandbox";

/// What the sandbox needs to know of the emulator it talks to.
#[derive(Debug, Clone)]
pub struct SandboxEmulator {
    /// `http://host:port` of its HTTP listener.
    pub http_base: String,
    /// Its CCS listener, if any.
    pub xmpp: Option<SocketAddr>,
    /// Its TLS certificate (PEM), trusted by the CCS channel.
    pub cert_pem: Option<String>,
    /// The service-account key file (JSON) of its default project.
    pub service_account_json: String,
    /// Legacy / CCS server key of its default sender.
    pub api_key: String,
    /// Its default sender id.
    pub sender_id: String,
    /// Its default C2DM account.
    pub c2dm_email: String,
    /// That account's password.
    pub c2dm_password: String,
}

/// The sandbox configuration: app `sandbox` (default) with channels `fcm` (v1, the default),
/// `legacy`, `xmpp` (when the emulator has CCS) and `c2dm` (carrying the C2DM-era flow).
pub fn sandbox_spec(
    service: ServiceSettings,
    api_key: Secret,
    emu: &SandboxEmulator,
) -> GatewaySpec {
    let http = |endpoint: String| HttpConfig {
        endpoint: Some(endpoint),
        ..HttpConfig::default()
    };
    let base = emu.http_base.trim_end_matches('/').to_string();
    let mut channels = vec![
        ChannelSpec {
            name: "fcm".into(),
            endpoint: base.clone(),
            credential: Secret::new(emu.service_account_json.clone(), "emulator:project-key"),
            max_in_flight: pushgate_client::v1::DEFAULT_MAX_IN_FLIGHT,
            settings: ChannelSettings::FcmV1 {
                project_id: None,
                http: HttpConfig {
                    http2_prior_knowledge: true,
                    ..http(base.clone())
                },
                connections: 2,
                rate_per_minute: None,
            },
        },
        ChannelSpec {
            name: "legacy".into(),
            endpoint: format!("{base}/gcm/send"),
            credential: Secret::new(emu.api_key.clone(), "emulator:api-key"),
            max_in_flight: 32,
            settings: ChannelSettings::Legacy {
                http: http(format!("{base}/gcm/send")),
                format: LegacyFormat::Json,
            },
        },
        ChannelSpec {
            name: "c2dm".into(),
            endpoint: format!("{base}/c2dm/send"),
            credential: Secret::new(emu.c2dm_password.clone(), "emulator:c2dm-password"),
            max_in_flight: 8,
            settings: ChannelSettings::C2dm {
                http: http(format!("{base}/c2dm/send")),
                login: Some((
                    emu.c2dm_email.clone(),
                    Some(format!("{base}/accounts/ClientLogin")),
                )),
            },
        },
    ];
    if let Some(xmpp) = emu.xmpp {
        channels.push(ChannelSpec {
            name: "xmpp".into(),
            endpoint: xmpp.to_string(),
            credential: Secret::new(emu.api_key.clone(), "emulator:api-key"),
            max_in_flight: 100,
            settings: ChannelSettings::Ccs {
                host: xmpp.ip().to_string(),
                port: xmpp.port(),
                sender_id: emu.sender_id.clone(),
                ca_pem: emu.cert_pem.clone(),
                connections: 1,
                window: 100,
                echo: false,
                receipts: false,
            },
        });
    }
    let key_rate = service.limits.key_rate;
    GatewaySpec::new(
        service,
        vec![AppSpec {
            name: SANDBOX_APP.into(),
            is_default: true,
            api_keys: vec![api_key],
            default_channel: "fcm".into(),
            channels,
            c2dm_flow: C2dmFlowSpec {
                channel: "c2dm".into(),
                device_id_len: crate::c2dm_flow::device_id_len(),
                registration_id_len: crate::c2dm_flow::registration_id_len(
                    crate::c2dm_flow::REGISTRATION_ID_MAX,
                ),
            },
            webhook: None,
            key_rate,
        }],
    )
}
