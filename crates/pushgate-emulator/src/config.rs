//! How an emulator instance is set up.

use std::net::SocketAddr;

/// Settings of one emulator instance; every field has a default so callers can write
/// `EmulatorConfig { http, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Plain HTTP listener (HTTP/1.1 and h2c on the same port): legacy endpoints and the
    /// control API. Tests bind `127.0.0.1:0`.
    pub http: SocketAddr,
    /// Messages kept per virtual device; the oldest is dropped (and counted) beyond it.
    pub inbox_limit: usize,
    /// Protocol requests kept in the activity log (`GET /emulator/activity`).
    pub activity_limit: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8085)),
            inbox_limit: 1000,
            activity_limit: 1000,
            max_body_bytes: 8 * 1024 * 1024,
        }
    }
}
