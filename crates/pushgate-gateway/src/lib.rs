//! The gateway service (`pushgate serve`): device registry and send API over HTTP, durable
//! delivery workers per channel, and registry housekeeping from provider answers.
//!
//! Data flow (docs/architecture.md, "How a message flows"): handlers validate and write to the
//! [`Store`](pushgate_store::Store);
//! workers claim due deliveries per app and channel, send them with `pushgate-client`, and
//! record the outcomes with their registry effects in one transaction.

#![warn(missing_docs)]

pub mod api;
pub mod c2dm_flow;
pub mod channel;
pub mod cluster;
pub mod config;
pub mod console;
pub mod device_rules;
pub mod fanout;
pub mod http_server;
pub mod message;
pub mod reload;
pub mod retention;
mod service;
mod strict_json;
pub mod worker;

pub use service::{Gateway, RunningGateway, StartError};
pub mod event_wakeup;
pub mod metrics;
pub mod sandbox;
pub mod upstream;
pub mod webhook;
