//! Log set-up shared by every sub-command.

use tracing_subscriber::EnvFilter;

/// Logs to stderr, `info` by default, overridable with `RUST_LOG`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
