//! Log set-up shared by every sub-command: text for people (coloured only when stderr is a
//! terminal, so a file or journald gets no escape codes) or one JSON object per line for log
//! shippers, with the request id, app and channel as fields.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`),
    /// and `span` / `spans` holding the request's id and the app and channel at work.
    Json,
}

/// Logs to stderr at `default` level (`info` for services, `warn` for commands that draw
/// progress), overridable with `RUST_LOG`.
pub fn init(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
