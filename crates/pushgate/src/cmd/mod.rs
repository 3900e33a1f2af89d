//! One module per sub-command.

pub mod bench;
pub mod bench_e2e;
pub mod ccs_echo;
pub mod db;
pub mod demo;
pub mod devices;
pub mod emulator;
pub mod send;
pub mod serve;
pub mod topics;
