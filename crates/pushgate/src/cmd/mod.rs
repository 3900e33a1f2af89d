//! One module per sub-command.

pub mod bench;
pub mod emulator;
pub mod output;
pub mod send;
