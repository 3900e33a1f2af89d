//! The gateway's storage rules in plain Rust, apart from any SQL: what a provider answer does
//! to its delivery and to the registry, when due work has expired, and the public JSON of
//! events. Every backend asks these functions for a decision and only executes it, so SQLite
//! and PostgreSQL cannot drift apart.

pub mod events;
pub mod expiry;
pub mod outcome;
pub mod registry;
