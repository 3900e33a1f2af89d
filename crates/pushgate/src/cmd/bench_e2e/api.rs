//! The gateway's and the emulator's JSON answers that the benchmark reads, and the helpers
//! that fetch them.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Ctx;

/// Answer of `POST /emulator/devices`.
#[derive(Deserialize)]
pub(super) struct CreatedDevices {
    /// The devices created.
    pub(super) devices: Vec<CreatedDevice>,
}

/// One device the emulator created.
#[derive(Deserialize)]
pub(super) struct CreatedDevice {
    /// Its registration token.
    pub(super) token: String,
}

/// Answer of `GET /emulator/stats`: the emulator's own counts, the benchmark's reference.
#[derive(Deserialize, Clone, Copy, Default)]
pub(super) struct EmuStats {
    /// Messages stored in its devices' inboxes.
    pub(super) delivered: u64,
    /// Deliveries that repeated a payload the device already had.
    pub(super) duplicates: u64,
    /// Protocol requests answered.
    pub(super) requests: u64,
}

/// Answer of `POST /v1/apps/{app}/devices:import`.
#[derive(Deserialize)]
pub(super) struct Imported {
    /// Devices imported.
    pub(super) imported: u64,
}

/// Answer (202) of `POST /v1/apps/{app}/messages`.
#[derive(Deserialize)]
pub(super) struct Accepted {
    /// The message's id.
    pub(super) id: String,
    /// Deliveries the message fans out to.
    pub(super) deliveries: u64,
    /// Deliveries queued for the workers.
    pub(super) queued: u64,
    /// True when the counts are the first chunk's and the rest is stored after the answer.
    #[serde(default)]
    pub(super) expanding: bool,
}

/// Answer of `GET /v1/messages/{id}`: the message's state and one page of its results.
#[derive(Deserialize)]
pub(super) struct MessageView {
    /// When the gateway accepted it (RFC 3339).
    pub(super) created_at: String,
    /// Deliveries stored so far.
    pub(super) deliveries: u64,
    /// Whether every delivery is stored and final.
    pub(super) done: bool,
    /// Deliveries per state.
    #[serde(default)]
    pub(super) counts: BTreeMap<String, u64>,
    /// This page of per-delivery results.
    #[serde(default)]
    pub(super) results: Vec<ResultView>,
    /// Cursor of the next page (`null` after the last).
    #[serde(default)]
    pub(super) next_cursor: Value,
}

/// One delivery's result in a [`MessageView`] page.
#[derive(Deserialize)]
pub(super) struct ResultView {
    /// Its state (`sent`, …).
    pub(super) state: String,
    /// When it last changed (RFC 3339).
    pub(super) updated_at: String,
}

/// Sends `req`, insists on `want`, and reads the JSON answer.
pub(super) async fn expect_json<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
    want: StatusCode,
    what: &str,
) -> anyhow::Result<T> {
    let res = req
        .send()
        .await
        .with_context(|| format!("{what}: request failed"))?;
    let status = res.status();
    let bytes = res
        .bytes()
        .await
        .with_context(|| format!("{what}: cannot read the answer"))?;
    if status != want {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(600)]).into_owned();
        bail!("{what}: expected {want}, got {status}: {text}");
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{what}: unexpected answer"))
}

/// Reads the emulator's counts.
pub(super) async fn emu_stats(ctx: &Ctx) -> anyhow::Result<EmuStats> {
    expect_json(
        ctx.http.get(format!("{}/emulator/stats", ctx.emu.base)),
        StatusCode::OK,
        "GET /emulator/stats",
    )
    .await
}
