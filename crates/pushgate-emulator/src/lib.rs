//! Fake Google push servers: the other end of every pushgate test and benchmark.
//!
//! This part emulates the GCM/FCM legacy HTTP endpoints (`POST /gcm/send`, `POST /fcm/send`,
//! JSON and plain text) in front of a registry of virtual devices, with fault injection and a
//! JSON control API under `/emulator/` (PROTOCOLS.md §1 and §7). Start it with
//! [`Emulator::start`], or mount [`router`] inside another axum application.
//!
//! The emulator never depends on `pushgate-client`: a bug shared by both ends would hide
//! itself (DESIGN.md).

mod activity;
mod config;
mod control;
mod devices;
mod faults;
mod ids;
mod legacy;
mod respond;
mod senders;
mod server;
mod state;
mod stats;
mod time;
pub mod tls;
pub mod token;

pub use config::EmulatorConfig;
pub use server::{Emulator, RunningEmulator, ShutdownHandle, router};
pub use state::EmulatorState;

/// Sender id (project number) that exists at start and after every reset, so a fresh
/// emulator is usable without any setup call.
pub const DEFAULT_SENDER_ID: &str = "1234567890";
/// API key (legacy server key) of [`DEFAULT_SENDER_ID`].
pub const DEFAULT_API_KEY: &str = "emulator-key";
/// Android package given to virtual devices created without one.
pub const DEFAULT_PACKAGE: &str = "com.example.app";
