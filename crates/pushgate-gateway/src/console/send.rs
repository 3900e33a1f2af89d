//! The Send form: a test message to devices, users, tags, a topic, a condition or everyone,
//! with data, a notification and a dry-run switch. The form is turned into the API's JSON
//! body and goes through the API's own validation and insert path
//! (`api::messages::accept`); a problem is shown on the form, nothing is stored, and a
//! stored message lands on its page. Each rendered form carries an idempotency key, so a
//! form submitted twice stores one message.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::AppState;
use crate::api::messages::accept;

use super::csrf;
use super::page::{Nav, PageResult, harden, message_href, render};
use super::session::{self, Viewer};

/// What the form's fields hold (also its values when shown again after a problem).
#[derive(Debug, Default, Deserialize)]
pub struct SendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    idem: String,
    /// `device_ids`, `users`, `tags`, `topic`, `condition` or `all`.
    #[serde(default)]
    kind: String,
    /// One target per line (a topic or condition: the whole text).
    #[serde(default)]
    targets: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    /// `key=value`, one per line.
    #[serde(default)]
    data: String,
    #[serde(default)]
    collapse_key: String,
    #[serde(default)]
    ttl: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    dry_run: Option<String>,
}

/// Prefills from the query (`?kind=device_ids&targets=...`, from a device's page).
#[derive(Debug, Default, Deserialize)]
pub struct Prefill {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    targets: String,
}

/// The target kinds, as the select offers them.
const KINDS: &[(&str, &str)] = &[
    ("device_ids", "Devices (ids, one per line)"),
    ("users", "Users (one per line)"),
    ("tags", "Tags (one per line)"),
    ("topic", "Topic"),
    ("condition", "Condition"),
    ("tokens", "Raw tokens (one per line)"),
    ("all", "Every device of the app"),
];

#[derive(Template)]
#[template(path = "console/send.html")]
struct SendPage {
    title: &'static str,
    nav: Nav,
    app: String,
    channels: Vec<String>,
    kinds: &'static [(&'static str, &'static str)],
    f: SendForm,
    error: Option<String>,
}

/// The API body the form means, or what is wrong with the form itself (the API's checks
/// come after).
fn body_of(f: &SendForm) -> Result<Value, String> {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let text = f.targets.trim();
    let value = match f.kind.as_str() {
        "device_ids" | "users" | "tags" | "tokens" => json!(lines(text)),
        "topic" | "condition" => json!(text),
        "all" => json!(true),
        other => return Err(format!("targets: unknown kind {other:?}")),
    };
    let mut targets = Map::new();
    targets.insert(f.kind.clone(), value);
    let targets = Value::Object(targets);
    let mut data = Map::new();
    for (i, line) in f.data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("data line {}: write key=value", i + 1));
        };
        data.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    let mut body = Map::new();
    body.insert("targets".into(), targets);
    if !data.is_empty() {
        body.insert("data".into(), Value::Object(data));
    }
    let mut notification = Map::new();
    for (name, value) in [("title", &f.title), ("body", &f.body)] {
        if !value.trim().is_empty() {
            notification.insert(name.into(), Value::String(value.clone()));
        }
    }
    if !notification.is_empty() {
        body.insert("notification".into(), Value::Object(notification));
    }
    if !f.collapse_key.trim().is_empty() {
        body.insert("collapse_key".into(), json!(f.collapse_key.trim()));
    }
    if !f.ttl.trim().is_empty() {
        let ttl: u64 = f
            .ttl
            .trim()
            .parse()
            .map_err(|_| "ttl: must be a whole number of seconds".to_string())?;
        body.insert("ttl".into(), json!(ttl));
    }
    if !f.priority.is_empty() {
        body.insert("priority".into(), json!(f.priority));
    }
    if !f.channel.is_empty() {
        body.insert("channel".into(), json!(f.channel));
    }
    if f.dry_run.is_some() {
        body.insert("dry_run".into(), json!(true));
    }
    Ok(Value::Object(body))
}

fn page(
    state: &AppState,
    viewer: &Viewer,
    app: &crate::api::AppInfo,
    f: SendForm,
    error: Option<String>,
) -> SendPage {
    SendPage {
        title: "Send a test message",
        nav: Nav::new(state, viewer, Some(&app.name)),
        app: app.name.clone(),
        channels: app.channels.clone(),
        kinds: KINDS,
        f,
        error,
    }
}

/// `GET /admin/apps/{app}/send`.
pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(p): Query<Prefill>,
) -> PageResult {
    let app = viewer.app(&state, &app)?;
    let f = SendForm {
        idem: session::random_token(),
        kind: if p.kind.is_empty() {
            "device_ids".into()
        } else {
            p.kind
        },
        targets: p.targets,
        ..SendForm::default()
    };
    Ok(render(
        StatusCode::OK,
        &page(&state, &viewer, &app, f, None),
    ))
}

/// `POST /admin/apps/{app}/send`: stored and on to the message's page, or the form again
/// with what is wrong.
pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Form(f): Form<SendForm>,
) -> PageResult {
    csrf::check(&viewer, &f.csrf)?;
    let app = viewer.app(&state, &app)?;
    let body = match body_of(&f) {
        Ok(b) => b,
        Err(problem) => {
            let p = page(&state, &viewer, &app, f, Some(problem));
            return Ok(render(StatusCode::BAD_REQUEST, &p));
        }
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let key = (!f.idem.is_empty()).then(|| format!("console-{}", f.idem));
    match accept(&state, &app, &bytes, key).await {
        Ok(out) => Ok(harden(
            Redirect::to(&message_href(&app.name, out.message_id)).into_response(),
        )),
        Err(e) => {
            let status = e.status;
            let p = page(&state, &viewer, &app, f, Some(e.message));
            Ok(render(status, &p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_body() {
        let f = SendForm {
            kind: "device_ids".into(),
            targets: "a\n\n b \n".into(),
            title: "Hi".into(),
            data: "k = v=1\n\nx=\"<y>\"".into(),
            ttl: "60".into(),
            dry_run: Some("on".into()),
            ..SendForm::default()
        };
        assert_eq!(
            body_of(&f).unwrap(),
            json!({"targets": {"device_ids": ["a", "b"]}, "data": {"k": "v=1", "x": "\"<y>\""},
                   "notification": {"title": "Hi"}, "ttl": 60, "dry_run": true})
        );
        let bad = SendForm {
            kind: "all".into(),
            data: "novalue".into(),
            ..SendForm::default()
        };
        assert_eq!(body_of(&bad).unwrap_err(), "data line 1: write key=value");
        let ttl = SendForm {
            kind: "all".into(),
            ttl: "soon".into(),
            ..SendForm::default()
        };
        assert!(body_of(&ttl).unwrap_err().starts_with("ttl:"));
    }
}
