//! Progress on stderr for the commands that talk to a gateway: a bar when the total is known,
//! a spinner when it is not. Both draw nothing when stderr is not a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often a spinner redraws by itself.
const TICK: Duration = Duration::from_millis(120);

/// A bar of `total` items, labelled `what` (e.g. "devices").
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} {{msg}} (eta {{eta}})"
    );
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(total).with_style(style);
    bar.enable_steady_tick(TICK);
    bar
}

/// A spinner counting items of unknown total, labelled `what`.
pub fn spinner(what: &str) -> ProgressBar {
    let template = format!("{{spinner}} [{{elapsed_precise}}] {{pos}} {what} {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let spinner = ProgressBar::new_spinner().with_style(style);
    spinner.enable_steady_tick(TICK);
    spinner
}
