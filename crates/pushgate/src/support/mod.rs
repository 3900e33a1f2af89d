//! Pieces that several sub-commands share: a client of a running gateway's API, progress
//! display, outcome tables, and the description of the sandbox's emulator.

pub mod gateway_client;
pub mod output;
pub mod progress;
pub mod sandbox_emulator;
