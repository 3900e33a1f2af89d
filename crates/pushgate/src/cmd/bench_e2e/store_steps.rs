//! How long the benchmarked channel's delivery loop waited for the store: the gateway's
//! `pushgate_queue_step_duration_seconds` histograms (claims and commits), read from its
//! `/metrics` before and after a scenario and summed over its instances. Set beside the
//! delivery window, they say whether the store or the provider set the pace.

use std::time::Duration;

use pushgate_gateway::sandbox::SANDBOX_APP;

use super::Ctx;
use super::setup::GatewaySide;

/// The histogram family read (its `_count` and `_sum` series).
const FAMILY: &str = "pushgate_queue_step_duration_seconds";

/// One step's count and total seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Step {
    count: f64,
    seconds: f64,
}

impl Step {
    fn since(self, before: Step) -> Step {
        Step {
            count: self.count - before.count,
            seconds: self.seconds - before.seconds,
        }
    }

    /// `712 × 4.1 ms = 2.9 s (68%)`: count, mean, total and share of `window`.
    fn describe(self, window: Duration) -> String {
        let mean_ms = if self.count > 0.0 {
            self.seconds / self.count * 1e3
        } else {
            0.0
        };
        let share = self.seconds / window.as_secs_f64().max(1e-9) * 100.0;
        format!(
            "{:.0} × {mean_ms:.1} ms = {:.2} s ({share:.0}%)",
            self.count, self.seconds
        )
    }
}

/// Claims and commits of one channel's loop.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct StoreSteps {
    claims: Step,
    commits: Step,
}

impl StoreSteps {
    fn add(&mut self, other: StoreSteps) {
        for (total, add) in [
            (&mut self.claims, other.claims),
            (&mut self.commits, other.commits),
        ] {
            total.count += add.count;
            total.seconds += add.seconds;
        }
    }

    /// What happened between `before` and `self`.
    fn since(&self, before: &Self) -> Self {
        Self {
            claims: self.claims.since(before.claims),
            commits: self.commits.since(before.commits),
        }
    }

    /// The report's line; shares are of `window` (the scenario's delivery time).
    fn line(&self, window: Duration) -> String {
        format!(
            "  store      the delivery loop waited for claims {}, for commits {} of {:.2} s",
            self.claims.describe(window),
            self.commits.describe(window),
            window.as_secs_f64()
        )
    }

    /// Prints the report's line when the steps were read; `window_ms` is the scenario's
    /// delivery time.
    pub(super) fn print(steps: Option<&Self>, window_ms: i64) {
        if let Some(steps) = steps {
            let window = Duration::from_millis(u64::try_from(window_ms).unwrap_or(0));
            println!("{}", steps.line(window));
        }
    }
}

/// The benchmarked channel's steps on the gateway instances of a scenario, taken when the
/// probe starts, so that [`StepsProbe::since`] gives the scenario's own.
pub(super) struct StepsProbe {
    http: reqwest::Client,
    bases: Vec<String>,
    key: String,
    channel: &'static str,
    before: Option<StoreSteps>,
}

impl StepsProbe {
    /// Reads the steps so far of the sandbox's benchmarked channel.
    pub(super) async fn start(ctx: &Ctx, gw: &GatewaySide) -> Self {
        let mut probe = Self {
            http: ctx.http.clone(),
            bases: gw.bases.clone(),
            key: gw.api_key.clone(),
            channel: ctx.args.channel.name(),
            before: None,
        };
        probe.before = probe.read().await;
        probe
    }

    /// The steps since the probe started; `None` when either read failed.
    pub(super) async fn since(&self) -> Option<StoreSteps> {
        Some(self.read().await?.since(self.before.as_ref()?))
    }

    /// The steps so far, summed over the instances; `None` when an instance does not serve
    /// `/metrics` on its API listener (a `metrics_listen` of its own, or a token the
    /// benchmark lacks).
    async fn read(&self) -> Option<StoreSteps> {
        let mut sum = StoreSteps::default();
        for base in &self.bases {
            let answer = self
                .http
                .get(format!("{base}/metrics"))
                .bearer_auth(&self.key)
                .send()
                .await
                .ok()?;
            if !answer.status().is_success() {
                return None;
            }
            sum.add(parse(&answer.text().await.ok()?, SANDBOX_APP, self.channel));
        }
        Some(sum)
    }
}

/// The steps of `app`'s channel `channel` in an OpenMetrics text.
fn parse(text: &str, app: &str, channel: &str) -> StoreSteps {
    let mut steps = StoreSteps::default();
    let wanted = [format!("app=\"{app}\""), format!("channel=\"{channel}\"")];
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(FAMILY) else {
            continue;
        };
        let Some((series, labels_and_value)) = rest.split_once('{') else {
            continue;
        };
        let Some((labels, value)) = labels_and_value.rsplit_once('}') else {
            continue;
        };
        let labels: Vec<&str> = labels.split(',').collect();
        if !wanted.iter().all(|w| labels.contains(&w.as_str())) {
            continue;
        }
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let step = if labels.contains(&"step=\"claim\"") {
            &mut steps.claims
        } else if labels.contains(&"step=\"commit\"") {
            &mut steps.commits
        } else {
            continue;
        };
        match series {
            "_count" => step.count += value,
            "_sum" => step.seconds += value,
            _ => {}
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE pushgate_queue_step_duration_seconds histogram
pushgate_queue_step_duration_seconds_sum{app="sandbox",channel="fcm",step="claim"} 2.5
pushgate_queue_step_duration_seconds_count{app="sandbox",channel="fcm",step="claim"} 500
pushgate_queue_step_duration_seconds_bucket{le="0.001",app="sandbox",channel="fcm",step="claim"} 20
pushgate_queue_step_duration_seconds_sum{app="sandbox",channel="fcm",step="commit"} 1.5
pushgate_queue_step_duration_seconds_count{app="sandbox",channel="fcm",step="commit"} 300
pushgate_queue_step_duration_seconds_sum{app="sandbox",channel="legacy",step="claim"} 9.0
pushgate_queue_step_duration_seconds_count{app="sandbox",channel="legacy",step="claim"} 9
pushgate_queue_step_duration_seconds_sum{app="other",channel="fcm",step="claim"} 7.0
pushgate_provider_request_duration_seconds_sum{app="sandbox",channel="fcm",outcome="delivered",reason=""} 4.0
"#;

    #[test]
    fn only_the_channels_count_and_sum_are_read() {
        let steps = parse(TEXT, "sandbox", "fcm");
        assert_eq!(
            steps.claims,
            Step {
                count: 500.0,
                seconds: 2.5
            }
        );
        assert_eq!(
            steps.commits,
            Step {
                count: 300.0,
                seconds: 1.5
            }
        );
    }

    #[test]
    fn the_line_gives_mean_total_and_share() {
        let before = parse(TEXT, "sandbox", "legacy");
        let after = StoreSteps {
            claims: Step {
                count: 19.0,
                seconds: 10.0,
            },
            commits: Step::default(),
        };
        // 10 claims, 1 s in all: a mean of 100 ms, a quarter of a 4-second window.
        let line = after.since(&before).line(Duration::from_secs(4));
        assert!(
            line.contains("claims 10 × 100.0 ms = 1.00 s (25%)"),
            "{line}"
        );
        assert!(line.contains("commits 0 × 0.0 ms = 0.00 s (0%)"), "{line}");
    }
}
