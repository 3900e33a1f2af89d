//! The overview: the apps the session sees, each channel's health (paused, last error and
//! when, queue depth, oldest due age; credentials by reference and fingerprint only), and a
//! plot of provider answers per minute by outcome over the last hour, drawn on the server as
//! SVG.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use pushgate_store::QueueStats;
use time::OffsetDateTime;

use crate::api::AppState;
use crate::metrics::activity::{GROUPS, MINUTES};

use super::page::{Nav, PageResult, age, ok, when};
use super::session::Viewer;

/// One channel's row.
struct ChannelRow {
    name: String,
    kind: String,
    is_default: bool,
    endpoint: String,
    credential: String,
    fingerprint: String,
    /// `ok`, `paused` or `error`.
    health: &'static str,
    health_text: String,
    last_error: String,
    pending: u64,
    due: u64,
    oldest_due: String,
    attempted: u64,
}

/// One app's section.
struct AppSection {
    name: String,
    default_channel: String,
    channels: Vec<ChannelRow>,
}

/// One bar segment of the plot.
struct Bar {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    group: &'static str,
    label: String,
}

/// The plot, in SVG units.
struct Plot {
    width: i64,
    height: i64,
    top: i64,
    bottom: i64,
    bars: Vec<Bar>,
    max: u64,
    summary: String,
    legend: Vec<(&'static str, u64)>,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    title: &'static str,
    nav: Nav,
    plot: Plot,
    apps: Vec<AppSection>,
}

const BAR: i64 = 10;
const LEFT: i64 = 40;
const TOP: i64 = 10;
const PLOT_H: i64 = 150;

/// Stacked bars of `minutes` (oldest first), scaled to the busiest minute.
fn plot(minutes: &[[u64; 4]]) -> Plot {
    let max = minutes
        .iter()
        .map(|m| m.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut bars = Vec::new();
    let mut totals = [0u64; 4];
    for (i, m) in minutes.iter().enumerate() {
        let x = LEFT + i as i64 * BAR;
        let mut base = TOP + PLOT_H;
        for (g, &n) in m.iter().enumerate() {
            totals[g] += n;
            if n == 0 {
                continue;
            }
            let h = ((n as f64 / max as f64) * PLOT_H as f64).round().max(1.0) as i64;
            base -= h;
            let ago = minutes.len() - 1 - i;
            bars.push(Bar {
                x,
                y: base,
                w: BAR - 2,
                h,
                group: GROUPS[g],
                label: format!("{n} {} ({ago} min ago)", GROUPS[g]),
            });
        }
    }
    let all: u64 = totals.iter().sum();
    let parts: Vec<String> = GROUPS
        .iter()
        .zip(totals)
        .map(|(g, n)| format!("{n} {g}"))
        .collect();
    Plot {
        width: LEFT + MINUTES * BAR + 10,
        height: TOP + PLOT_H + 24,
        top: TOP,
        bottom: TOP + PLOT_H,
        bars,
        max,
        summary: format!(
            "{all} provider answers in the last hour: {}",
            parts.join(", ")
        ),
        legend: GROUPS.iter().copied().zip(totals).collect(),
    }
}

/// `GET /admin`.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let now = OffsetDateTime::now_utc();
    let queues: HashMap<(String, String), QueueStats> = state
        .store
        .queue_by_channel(now)
        .await?
        .into_iter()
        .map(|q| ((q.app, q.channel), q.stats))
        .collect();
    let mut apps = Vec::new();
    for app in viewer.apps(&state) {
        let mut channels = Vec::new();
        for c in state.store.list_channels(&app.name).await? {
            let status = state
                .channels
                .get(&app.name, &c.name)
                .map(|e| e.status.view())
                .unwrap_or_default();
            let q = queues
                .get(&(app.name.clone(), c.name.clone()))
                .cloned()
                .unwrap_or_default();
            let paused = status.paused_until.filter(|t| *t > now);
            let (health, health_text) = match (&paused, &status.last_error) {
                (Some(t), _) => ("paused", format!("paused until {}", when(*t))),
                (None, Some((at, _))) if now - *at < time::Duration::minutes(5) => {
                    ("error", "failing".to_string())
                }
                _ => ("ok", "ok".to_string()),
            };
            channels.push(ChannelRow {
                name: c.name.clone(),
                kind: c.kind.clone(),
                is_default: c.is_default,
                endpoint: c.endpoint.clone(),
                credential: c.credential_ref.clone(),
                fingerprint: c.credential_fingerprint.clone(),
                health,
                health_text,
                last_error: status
                    .last_error
                    .map(|(at, what)| format!("{what} ({})", when(at)))
                    .unwrap_or_else(|| "none".into()),
                pending: q.pending,
                due: q.due,
                oldest_due: q
                    .oldest_due
                    .map(|t| age((now - t).whole_seconds().max(0)))
                    .unwrap_or_else(|| "-".into()),
                attempted: status.attempted,
            });
        }
        apps.push(AppSection {
            name: app.name.clone(),
            default_channel: app.default_channel.clone(),
            channels,
        });
    }
    let minutes = state
        .metrics
        .activity()
        .per_minute(now, |app| viewer.scope.sees(app));
    Ok(ok(&OverviewPage {
        title: "Overview",
        nav: Nav::new(&state, &viewer, None),
        plot: plot(&minutes),
        apps,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_minute_fills_the_plot_and_segments_stack_upwards() {
        let mut minutes = vec![[0u64; 4]; MINUTES as usize];
        minutes[59] = [3, 1, 0, 0];
        minutes[0] = [1, 0, 0, 1];
        let p = plot(&minutes);
        assert_eq!(p.max, 4);
        let last: Vec<&Bar> = p.bars.iter().filter(|b| b.x == LEFT + 59 * BAR).collect();
        assert_eq!(last.len(), 2);
        // sent: 3 of 4 of the height, from the bottom; retried sits on top of it.
        assert_eq!(last[0].group, "sent");
        assert_eq!(last[0].h, 113);
        assert_eq!(last[0].y + last[0].h, TOP + PLOT_H);
        assert_eq!(last[1].group, "retried");
        assert_eq!(last[1].y + last[1].h, last[0].y);
        assert_eq!(
            p.summary,
            "6 provider answers in the last hour: 4 sent, 1 retried, 0 token_dead, 1 failed"
        );
    }
}
