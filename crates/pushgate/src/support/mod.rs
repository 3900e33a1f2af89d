//! Pieces that several sub-commands share: a client of a running gateway's API, progress
//! display, outcome tables, the description of the sandbox's emulator, and who holds a port.

pub mod gateway_client;
pub mod output;
pub mod ports;
pub mod progress;
pub mod sandbox_emulator;
