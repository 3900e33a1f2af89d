//! The Cloud Connection Server (CCS): GCM/FCM over XMPP with upstream messages
//! (docs/protocols.md, "CCS (XMPP)").
//!
//! [`CcsClient::connect`] opens a pool of TLS connections (one by default) and returns the
//! client and an [`UpstreamStream`]. [`CcsClient::send`] resolves on the message's ack or nack
//! as an [`Outcome`](pushgate_proto::Outcome); meanwhile the client:
//!
//! * never has more than `window` unanswered messages on one connection (a send waits for a
//!   slot: back-pressure);
//! * on `CONNECTION_DRAINING` opens a new connection, stops sending on the old one and lets
//!   what is in flight there finish; a `CONNECTION_DRAINING` nack is resent at once elsewhere;
//! * on connection loss reconnects (at once, then with backoff) and resends every message that
//!   was never answered (so a message whose ack was lost may reach the device twice);
//! * retries `SERVICE_UNAVAILABLE` nacks with the `retry` policy's backoff;
//! * hands upstream messages and receipts to the application and acks them to CCS only once
//!   the application accepted them ([`Upstream::ack`]): at-least-once, with redeliveries of
//!   recently seen ids suppressed;
//! * sends XEP-0199 pings to keep idle connections open.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pushgate_client::ccs::{CcsClient, CcsConfig, CcsMessage};
//!
//! let config = CcsConfig::new("fcm-xmpp.googleapis.com", 5235, "1234567890", "server-key")
//!     .with_ca_pem(std::fs::read_to_string("ca.pem")?);
//! let (client, mut upstream) = CcsClient::connect(config).await?;
//! let outcome = client.send(CcsMessage::to("token").data("score", "4x8")).await?;
//! println!("{outcome:?}");
//! while let Some(message) = upstream.recv().await {
//!     println!("from device: {:?}", message.event);
//!     message.ack();
//! }
//! # Ok(()) }
//! ```

mod client;
mod config;
mod conn;
pub mod echo;
mod error;
mod message;
mod upstream;

pub use client::{CcsClient, ClientStats};
pub use config::CcsConfig;
pub use error::CcsError;
pub use message::CcsMessage;
pub use pushgate_proto::ccs::{NackCode, Receipt, ReceiptData, UpstreamMessage};
pub use upstream::{AckHandle, Upstream, UpstreamEvent, UpstreamStream};
