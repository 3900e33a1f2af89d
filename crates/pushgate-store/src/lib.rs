//! Durable state of the gateway: device registry, messages, deliveries and events.
//!
//! Empty until the gateway issue lands; the crate exists now so that the workspace has the
//! shape DESIGN.md draws (proto <- store <- gateway).
