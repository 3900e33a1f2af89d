//! One module per sub-command.

pub mod bench;
pub mod ccs_echo;
pub mod emulator;
pub mod output;
pub mod send;
pub mod topics;
