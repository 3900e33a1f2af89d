//! Fake Google push servers: the other end of every pushgate test and benchmark.
//!
//! This part emulates the GCM/FCM legacy HTTP endpoints (`POST /gcm/send`, `POST /fcm/send`,
//! JSON and plain text) and FCM HTTP v1 (`POST /v1/projects/{p}/messages:send`, with the
//! OAuth token endpoint `POST /token` and service-account projects) in front of a registry of
//! virtual devices, with fault injection and a JSON control API under `/emulator/`
//! (docs/protocols.md, "Legacy HTTP", "FCM HTTP v1", "Emulator checklist"; docs/emulator.md).
//! Topics and conditions fan out to subscribed devices
//! (`/iid/v1:batchAdd`, `/iid/v1:batchRemove`, `/iid/info/{token}`, the v1 registrations
//! endpoints), device groups live at `/gcm/notification` and `/fcm/notification`, and C2DM
//! at `/accounts/ClientLogin` and `/c2dm/send` (docs/protocols.md, "C2DM",
//! "Topics, conditions, device groups and Instance ID"). Virtual devices
//! created with `confirm_via` run the device side of the C2DM-era registration flow
//! (`/c2dm/registration`, `/c2dm/confirmation`) against a gateway. Start it with
//! [`Emulator::start`], or mount [`router`] inside another axum application.
//!
//! The emulator never depends on `pushgate-client`: a bug shared by both ends would hide
//! itself (docs/architecture.md, "The crates").
//!
//! Where things live:
//!
//! * one module per Google protocol: `legacy`, `v1` (with `oauth` and `projects`), `ccs`,
//!   `c2dm`, `iid`, `topics`, `groups`;
//! * `recipient`: the one token check they all run, each mapping its verdict to its own
//!   wire error;
//! * `control`: the whole `/emulator/...` API, one router listing every route, one module
//!   per resource;
//! * `devices`, `senders`, `faults`, `activity`, `stats`: the state those parts share,
//!   gathered in `state`;
//! * `server`, `listen`, [`tls`], `bind`: serving, over plain HTTP, HTTPS and XMPP, with the
//!   instance's self-signed certificate; `h2fix`: HTTP/2 as Google accepts it, and logged.

#![warn(missing_docs)]

mod activity;
mod bind;
mod c2dm;
mod ccs;
mod config;
mod confirm;
mod control;
mod devices;
mod faults;
mod groups;
mod h2fix;
mod ids;
mod iid;
mod legacy;
mod listen;
mod oauth;
mod projects;
mod recipient;
mod respond;
mod senders;
mod server;
mod state;
mod stats;
mod time;
pub mod tls;
pub mod token;
mod topics;
mod v1;

pub use bind::{BindError, ListenerKind};
pub use c2dm::{DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD};
pub use ccs::CcsSettings;
pub use config::EmulatorConfig;
pub use server::{Emulator, RunningEmulator, ShutdownHandle, router};
pub use state::EmulatorState;

/// Sender id (project number) that exists at start and after every reset, so a fresh
/// emulator is usable without any setup call.
pub const DEFAULT_SENDER_ID: &str = "1234567890";
/// API key (legacy server key) of [`DEFAULT_SENDER_ID`].
pub const DEFAULT_API_KEY: &str = "emulator-key";
/// FCM v1 project that exists at start and after every reset; its number is
/// [`DEFAULT_SENDER_ID`], and `GET /emulator/projects/pushgate-emulator/key` hands out its key.
pub const DEFAULT_PROJECT_ID: &str = "pushgate-emulator";
/// Android package given to virtual devices created without one.
pub const DEFAULT_PACKAGE: &str = "com.example.app";
