//! What a sandbox gateway needs to know of the emulator it talks to (`serve`, `demo` and
//! `bench e2e` all build one): its addresses, its certificate, and the key file and default
//! credentials it publishes.

use std::net::SocketAddr;

use pushgate_emulator::{
    DEFAULT_API_KEY, DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD, DEFAULT_PROJECT_ID,
    DEFAULT_SENDER_ID,
};
use pushgate_gateway::sandbox::SandboxEmulator;

/// The emulator at `base` (with CCS at `xmpp`, trusting `cert_pem`), its default project's
/// key file fetched from its control API.
pub async fn describe(
    http: &reqwest::Client,
    base: &str,
    xmpp: Option<SocketAddr>,
    cert_pem: Option<String>,
) -> anyhow::Result<SandboxEmulator> {
    let service_account_json = http
        .get(format!("{base}/emulator/projects/{DEFAULT_PROJECT_ID}/key"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(SandboxEmulator {
        http_base: base.to_string(),
        xmpp,
        cert_pem,
        service_account_json,
        api_key: DEFAULT_API_KEY.into(),
        sender_id: DEFAULT_SENDER_ID.into(),
        c2dm_email: DEFAULT_C2DM_EMAIL.into(),
        c2dm_password: DEFAULT_C2DM_PASSWORD.into(),
    })
}
