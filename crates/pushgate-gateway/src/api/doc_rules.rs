//! The bounds and enums of the OpenAPI document, filled in from the very constants, types and
//! configuration the handlers validate with, so that the document cannot drift from the
//! server: page sizes, state and event-type names, text lengths, list sizes, the app's
//! channels, the C2DM-era parameter lengths, and the methods the C2DM-era routes refuse.
//!
//! It edits the generated document as JSON: utoipa's attributes take literals only, and
//! several bounds come from the configuration. A rule whose target is missing panics when
//! the router is built, so that renaming a field without its rule fails every test at once.

use pushgate_proto::legacy::limits::MAX_TTL_SECONDS;
use pushgate_store::{DeliveryState, DeviceState, EventKind};
use serde_json::{Map, Value, json};

use super::{AppState, PAGE_DEFAULT, PAGE_MAX};
use crate::c2dm_flow::{REGISTRATION_TOKEN_KEY, REGISTRATION_TOKEN_LEN};
use crate::device_rules::{MAX_DEVICE_ID_CHARS, MAX_LABEL_CHARS, MAX_LABELS, MAX_TOKEN_CHARS};
use crate::message::{MAX_COLLAPSE_KEY_CHARS, MAX_TARGET_CHARS, Notification, Payload};

/// Text without control characters (`char::is_control`: Unicode category Cc), the rule of
/// `device_rules::check_text`.
pub const NO_CONTROL_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";
/// A topic name (`is_valid_topic_name`).
pub const TOPIC_PATTERN: &str = "^[a-zA-Z0-9\\-_.~%]+$";
/// A send's topic: a topic name, optionally prefixed `/topics/`.
pub const TARGET_TOPIC_PATTERN: &str = "^(/topics/)?[a-zA-Z0-9\\-_.~%]+$";
/// The documented subset of the condition grammar: up to five `'topic' in topics` joined by
/// `&&` or `||` (the server also takes `!` and parentheses; the description says so).
pub const CONDITION_PATTERN: &str =
    "^'[a-zA-Z0-9\\-_.~%]+' in topics( (&&|\\|\\|) '[a-zA-Z0-9\\-_.~%]+' in topics){0,4}$";
/// Data keys the providers reserve (`is_reserved_data_key`).
pub const RESERVED_DATA_KEY_PATTERN: &str = "^(from|message_type|google.*|gcm.*)$";
/// A header value a client can send as it is: visible ASCII, inner spaces.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$";
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// The methods every C2DM-era route answers 501, as django-c2dm did.
pub const C2DM_REFUSED_METHODS: &[&str] =
    &["put", "post", "delete", "options", "head", "patch", "trace"];

/// What the document needs from the configuration.
struct Bounds {
    max_target_list: usize,
    max_device_batch: usize,
    channels: Vec<String>,
    /// Channels that refuse a notification (data only), found by asking each channel's own
    /// payload check.
    data_only: Vec<String>,
    /// `device_id` and `registration_id` lengths at the root (the default app) and under
    /// `/v1/apps/{app}/` (the widest of all apps).
    c2dm_root: Option<(usize, usize, usize, usize)>,
    c2dm_any: (usize, usize, usize, usize),
}

impl Bounds {
    fn of(state: &AppState) -> Self {
        let lens = |a: &super::AppInfo| {
            let f = &a.c2dm_flow;
            (
                *f.device_id_len.start(),
                *f.device_id_len.end(),
                *f.registration_id_len.start(),
                *f.registration_id_len.end(),
            )
        };
        let mut channels: Vec<String> = state
            .apps
            .all()
            .iter()
            .flat_map(|a| a.channels.iter().cloned())
            .collect();
        channels.sort();
        channels.dedup();
        let c2dm_any = state.apps.all().iter().map(|a| lens(a)).fold(
            (usize::MAX, 0, usize::MAX, 0),
            |acc, l| {
                (
                    acc.0.min(l.0),
                    acc.1.max(l.1),
                    acc.2.min(l.2),
                    acc.3.max(l.3),
                )
            },
        );
        let probe = Payload {
            notification: Some(Notification {
                title: Some("probe".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut data_only: Vec<String> = state
            .channels
            .iter()
            .filter(|(_, _, e)| {
                e.channel
                    .check(&probe)
                    .is_err_and(|err| err.field == "notification")
            })
            .map(|(_, name, _)| name.to_string())
            .collect();
        data_only.sort();
        data_only.dedup();
        Bounds {
            data_only,
            max_target_list: state.limits.max_target_list,
            max_device_batch: state.limits.max_device_batch,
            channels,
            c2dm_root: state.apps.default_app().map(|a| lens(&a)),
            c2dm_any,
        }
    }
}

/// Fills the bounds and enums into `doc` (the generated document, as JSON).
pub fn apply(doc: &mut Value, state: &AppState) {
    let b = Bounds::of(state);
    pages(doc);
    enums(doc);
    device_operations(doc, &b);
    messages(doc, &b);
    responses(doc);
    stream(doc);
    c2dm(doc, &b);
}

fn text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": NO_CONTROL_PATTERN})
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Value {
    Value::Array(all.iter().map(|v| Value::from(name(*v))).collect())
}

fn obj<'a>(v: &'a mut Value, what: &str) -> &'a mut Map<String, Value> {
    v.as_object_mut()
        .unwrap_or_else(|| panic!("OpenAPI document: {what} is not an object"))
}

fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
    v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("OpenAPI document has no {pointer}"))
}

/// Every operation, as `(path, method, operation)`.
fn operations(doc: &mut Value) -> Vec<(String, String, &mut Value)> {
    let mut out = Vec::new();
    for (path, item) in obj(at(doc, "/paths"), "paths") {
        for (method, op) in obj(item, path) {
            out.push((path.clone(), method.clone(), op));
        }
    }
    out
}

/// The schema of parameter `name` of `op`, if it has one.
fn param<'a>(op: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    op.get_mut("parameters")?
        .as_array_mut()?
        .iter_mut()
        .find(|p| p["name"] == name)
        .map(|p| &mut p["schema"])
}

fn set_param(doc: &mut Value, path: &str, method: &str, name: &str, schema: Value) {
    let op = at(doc, &format!("/paths/{}/{method}", escape(path)));
    *param(op, name).unwrap_or_else(|| panic!("{method} {path} has no parameter {name}")) = schema;
}

/// A path as one JSON pointer token.
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// `limit`: 1 to `PAGE_MAX`, `PAGE_DEFAULT` when not given (`page_limit`).
fn pages(doc: &mut Value) {
    for (_, _, op) in operations(doc) {
        if let Some(schema) = param(op, "limit") {
            *schema = json!({"type": "integer", "format": "int32", "minimum": 1,
                "maximum": PAGE_MAX, "default": PAGE_DEFAULT});
        }
    }
}

/// Query enums: a device list's `state`, an event list's and stream's `type`.
fn enums(doc: &mut Value) {
    let states = names(DeviceState::ALL, DeviceState::as_str);
    let kinds = names(EventKind::ALL, EventKind::as_str);
    set_param(
        doc,
        "/v1/apps/{app}/devices",
        "get",
        "state",
        json!({"type": "string", "enum": states}),
    );
    for path in ["/v1/apps/{app}/events", "/v1/apps/{app}/events/stream"] {
        set_param(
            doc,
            path,
            "get",
            "type",
            json!({"type": "string", "enum": kinds.clone()}),
        );
    }
}

/// Device ids in paths and the two device body shapes (`device_rules`).
fn device_operations(doc: &mut Value, b: &Bounds) {
    for method in ["put", "get", "delete"] {
        set_param(
            doc,
            "/v1/apps/{app}/devices/{device_id}",
            method,
            "device_id",
            text(MAX_DEVICE_ID_CHARS),
        );
    }
    let channel = json!({"type": ["string", "null"], "enum": channels_or_null(&b.channels)});
    for name in ["DeviceBody", "ImportedDevice"] {
        let props = at(doc, &format!("/components/schemas/{name}/properties"));
        if name == "ImportedDevice" {
            props["device_id"] = text(MAX_DEVICE_ID_CHARS);
        }
        props["token"] = text(MAX_TOKEN_CHARS);
        props["channel"] = channel.clone();
        for f in ["user", "app_version"] {
            props[f] = nullable(text(MAX_LABEL_CHARS));
        }
        props["tags"] = json!({"type": "array", "maxItems": MAX_LABELS,
            "items": text(MAX_LABEL_CHARS)});
        let mut topic = text(MAX_LABEL_CHARS);
        topic["pattern"] = TOPIC_PATTERN.into();
        props["topics"] = json!({"type": "array", "maxItems": MAX_LABELS, "items": topic});
        at(doc, &format!("/components/schemas/{name}"))["additionalProperties"] = false.into();
    }
    let import = at(doc, "/components/schemas/ImportBody/properties/devices");
    import["minItems"] = 1.into();
    import["maxItems"] = b.max_device_batch.into();
    // Each device once: identical entries are refused with the rest (entries that share a
    // `device_id` and differ elsewhere too, which JSON Schema cannot say; the description does).
    import["uniqueItems"] = true.into();
    import["description"] = format!(
        "1 to {} devices, each with its own `device_id` (no two entries may share one)",
        b.max_device_batch
    )
    .into();
}

fn channels_or_null(channels: &[String]) -> Value {
    let mut v: Vec<Value> = channels.iter().map(|c| Value::from(c.as_str())).collect();
    v.push(Value::Null);
    Value::Array(v)
}

fn nullable(mut schema: Value) -> Value {
    schema["type"] = json!(["string", "null"]);
    schema
}

/// The send body (`message::body`) and the `Idempotency-Key` header.
fn messages(doc: &mut Value, b: &Bounds) {
    let list = json!({"type": "array", "maxItems": b.max_target_list,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_TARGET_CHARS}});
    let targets = at(doc, "/components/schemas/TargetsBody");
    let props = at(targets, "/properties");
    for f in ["device_ids", "tokens", "users", "tags"] {
        props[f] = list.clone();
    }
    props["topic"] = json!({"type": ["string", "null"], "pattern": TARGET_TOPIC_PATTERN});
    props["condition"] = json!({"type": ["string", "null"], "pattern": CONDITION_PATTERN,
        "description": "A topic condition: `'a' in topics` joined by `&&` and `||`, negated with `!`, grouped with parentheses (the pattern documents the simple form)"});
    // At least one target: a non-empty list, a topic, a condition or `all: true`.
    let mut any: Vec<Value> = ["device_ids", "tokens", "users", "tags"]
        .iter()
        .map(|f| json!({"required": [f], "properties": {*f: {"minItems": 1}}}))
        .collect();
    for f in ["topic", "condition"] {
        any.push(json!({"required": [f], "properties": {f: {"type": "string"}}}));
    }
    any.push(json!({"required": ["all"], "properties": {"all": {"const": true}}}));
    targets["anyOf"] = Value::Array(any);

    at(doc, "/components/schemas/SendBody")["description"] = "The whole body of \
        `POST /v1/apps/{app}/messages`. Beyond this schema, a message is checked against the \
        rules of every channel its targets reach (which depends on the registry): C2DM \
        carries data only, needs a collapse_key and at most 1024 bytes of data; FCM and GCM \
        take at most 4096 bytes of data and `#rrggbb` colours. A message one of them refuses \
        is answered 400 naming the channel."
        .into();
    let send = at(doc, "/components/schemas/SendBody/properties");
    send["ttl"]["maximum"] = MAX_TTL_SECONDS.into();
    send["collapse_key"] = json!({"type": ["string", "null"], "minLength": 1,
        "maxLength": MAX_COLLAPSE_KEY_CHARS});
    send["channel"] = json!({"type": ["string", "null"], "enum": channels_or_null(&b.channels)});
    send["data"]["propertyNames"] = json!({"minLength": 1,
        "not": {"pattern": RESERVED_DATA_KEY_PATTERN}});
    send["data"]["additionalProperties"] = json!({"type": ["string", "number", "boolean"]});
    if !b.data_only.is_empty() {
        // Sent over a data-only channel, a message carries no notification.
        at(doc, "/components/schemas/SendBody")["if"] =
            json!({"required": ["channel"], "properties": {"channel": {"enum": b.data_only}}});
        at(doc, "/components/schemas/SendBody")["then"] =
            json!({"properties": {"notification": {"type": "null"}}});
    }

    set_param(
        doc,
        "/v1/apps/{app}/messages",
        "post",
        "Idempotency-Key",
        json!({"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY,
            "pattern": IDEMPOTENCY_KEY_PATTERN}),
    );
}

/// Enums of the answers: device, delivery and event states and types.
fn responses(doc: &mut Value) {
    at(doc, "/components/schemas/DeviceView/properties/state")["enum"] =
        names(DeviceState::ALL, DeviceState::as_str);
    at(doc, "/components/schemas/DeliveryView/properties/state")["enum"] =
        names(DeliveryState::ALL, DeliveryState::as_str);
    at(doc, "/components/schemas/EventView/properties/type")["enum"] =
        names(EventKind::ALL, EventKind::as_str);
}

/// The event stream is a `text/event-stream` text, not one JSON object: each frame is
/// `id: <event id>`, `event: <type>`, `data: <EventView as JSON>`, then a blank line;
/// comment lines (`:`) keep the connection alive.
fn stream(doc: &mut Value) {
    let ok = at(
        doc,
        "/paths/~1v1~1apps~1{app}~1events~1stream/get/responses/200",
    );
    ok["description"] = "Server-sent events, never ending: each frame is `id: <event id>`, \
        `event: <type>`, `data: <the event as an EventView JSON object>` and a blank line; \
        lines starting with `:` keep the connection alive"
        .into();
    ok["content"] = json!({"text/event-stream": {"schema": {"type": "string"}}});
}

/// The C2DM-era routes: parameter lengths, plain-text answers, and 501 for other methods.
fn c2dm(doc: &mut Value, b: &Bounds) {
    let token = json!({"type": "string", "minLength": REGISTRATION_TOKEN_LEN,
        "maxLength": REGISTRATION_TOKEN_LEN});
    for (prefix, lens) in [("", b.c2dm_root), ("/v1/apps/{app}", Some(b.c2dm_any))] {
        let reg = format!("{prefix}/c2dm/registration");
        let conf = format!("{prefix}/c2dm/confirmation");
        if let Some((dmin, dmax, rmin, rmax)) = lens {
            let device = json!({"type": "string", "minLength": dmin, "maxLength": dmax,
                "pattern": NO_CONTROL_PATTERN});
            set_param(doc, &reg, "get", "device_id", device.clone());
            set_param(
                doc,
                &reg,
                "get",
                "registration_id",
                json!({"type": "string", "minLength": rmin, "maxLength": rmax,
                    "pattern": NO_CONTROL_PATTERN}),
            );
            set_param(doc, &conf, "get", "device_id", device);
        }
        set_param(doc, &conf, "get", REGISTRATION_TOKEN_KEY, token.clone());
        for path in [reg, conf] {
            let item = at(doc, &format!("/paths/{}", escape(&path)));
            let get_id = item["get"]["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let params = item["get"]["parameters"].clone();
            for (status, r) in obj(&mut item["get"]["responses"], "responses") {
                if status != "200" {
                    r["content"] = json!({"text/plain": {"schema": {"type": "string"}}});
                }
            }
            for method in C2DM_REFUSED_METHODS {
                item[*method] = json!({
                    "tags": ["c2dm"],
                    "operationId": format!("{get_id}_{method}"),
                    "summary": "Refused: the C2DM-era routes take GET only",
                    "parameters": params.clone(),
                    "responses": {"501": {
                        "description": "Any method but GET, as django-c2dm answered",
                        "content": {"text/plain": {"schema": {"type": "string"}}}
                    }}
                });
            }
        }
    }
}
