//! What the emulator saw: `GET /emulator/activity` (recent requests) and
//! `GET /emulator/stats` (counters of every protocol).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::activity::ActivityView;
use crate::respond;
use crate::state::EmulatorState;

/// Duplicate pairs listed by `GET /emulator/stats`.
const TOP_DUPLICATES: usize = 10;

/// The recent requests, oldest first.
pub(super) async fn activity(State(state): State<EmulatorState>) -> Response {
    let requests: Vec<ActivityView> = state
        .get()
        .activity
        .snapshot()
        .into_iter()
        .map(ActivityView::from)
        .collect();
    respond::json(StatusCode::OK, &json!({ "requests": requests }))
}

/// Every counter: sends, deliveries, duplicates, CCS, C2DM and `confirm_via` flows.
pub(super) async fn stats(State(state): State<EmulatorState>) -> Response {
    let inner = state.get();
    let mut view = serde_json::to_value(inner.stats.view(TOP_DUPLICATES)).unwrap_or_default();
    inner.ccs.write_stats(&mut view);
    inner.c2dm.write_stats(&mut view);
    inner.confirm.write_stats(&mut view);
    respond::json(StatusCode::OK, &view)
}
