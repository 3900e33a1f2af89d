//! Log set-up shared by every sub-command.

use tracing_subscriber::EnvFilter;

/// Logs to stderr at `default` level (`info` for services, `warn` for commands that draw
/// progress), overridable with `RUST_LOG`.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
