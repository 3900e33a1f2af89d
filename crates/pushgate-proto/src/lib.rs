//! Wire formats, limits, validation and outcome classification for Google's push protocols.
//!
//! This crate is pure: no I/O, no async runtime. Every layer above it (clients, emulator,
//! gateway) speaks the [`Outcome`] vocabulary defined here, whatever protocol carried the
//! answer.

#![warn(missing_docs)]

pub mod c2dm;
pub mod ccs;
pub mod condition;
mod form;
pub mod group;
pub mod iid;
pub mod legacy;
pub mod outcome;
pub mod retry_after;
pub mod token;
pub mod v1;
pub mod validation;

pub use outcome::{FailureScope, Outcome, OutcomeKind};
pub use retry_after::RetryAfter;
pub use validation::ValidationError;
