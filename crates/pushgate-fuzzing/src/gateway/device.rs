//! Device bodies (`PUT .../devices/{id}`) and `devices:import` batches.
//!
//! The gateway's own readers (`api::devices::DeviceFields`, `ImportBody`) are private to its
//! API module, so this reads the bodies the way it does (a JSON object, only the device
//! fields, the same types) and checks them with the public `device_rules`, the one set of
//! rules the API and the import command share.

use std::collections::HashSet;

use pushgate_gateway::device_rules::{
    DEVICE_FIELDS, MAX_DEVICE_ID_CHARS, MAX_LABEL_CHARS, MAX_TOKEN_CHARS, check_labels, check_text,
};
use serde_json::{Map, Value};

/// Most devices one import takes (the default `max_device_batch`).
const MAX_BATCH: usize = 1000;

/// A device accepted by the rules: the fields as they would be stored.
#[derive(Debug, PartialEq)]
struct Device {
    device_id: Option<String>,
    token: String,
    user: Option<String>,
    tags: Vec<String>,
    topics: Vec<String>,
    app_version: Option<String>,
    state: Option<String>,
}

fn text(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ()> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

fn list(obj: &Map<String, Value>, name: &str) -> Result<Vec<String>, ()> {
    match obj.get(name) {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| ()),
    }
}

/// Reads and checks one device object; `allowed` are the fields it may have.
fn read_device(value: &Value, allowed: &[&str]) -> Result<Device, ()> {
    let obj = value.as_object().ok_or(())?;
    if obj.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(());
    }
    let device = Device {
        device_id: text(obj, "device_id")?,
        token: text(obj, "token")?.ok_or(())?,
        user: text(obj, "user")?,
        tags: list(obj, "tags")?,
        topics: list(obj, "topics")?,
        app_version: text(obj, "app_version")?,
        state: text(obj, "state")?,
    };
    check_text("token", &device.token, MAX_TOKEN_CHARS).map_err(|_| ())?;
    for v in [&device.user, &device.app_version].into_iter().flatten() {
        check_text("user", v, MAX_LABEL_CHARS).map_err(|_| ())?;
    }
    check_labels("tags", &device.tags, false).map_err(|_| ())?;
    check_labels("topics", &device.topics, true).map_err(|_| ())?;
    if let Some(state) = &device.state
        && state != "active"
        && state != "disabled"
    {
        return Err(());
    }
    Ok(device)
}

/// Serialises an accepted device back to its JSON object.
fn to_json(d: &Device) -> Value {
    let mut obj = Map::new();
    let mut put = |k: &str, v: Value| {
        obj.insert(k.to_string(), v);
    };
    if let Some(id) = &d.device_id {
        put("device_id", Value::from(id.as_str()));
    }
    put("token", Value::from(d.token.as_str()));
    for (k, v) in [
        ("user", &d.user),
        ("app_version", &d.app_version),
        ("state", &d.state),
    ] {
        if let Some(v) = v {
            put(k, Value::from(v.as_str()));
        }
    }
    put("tags", Value::from(d.tags.clone()));
    put("topics", Value::from(d.topics.clone()));
    Value::Object(obj)
}

/// A request body as the gateway's strict reader takes it: a JSON object, nothing after it.
fn object(data: &[u8]) -> Option<Value> {
    if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(data).ok()
}

/// Reads a `PUT` device body (every device field but `device_id`).
fn put_body(data: &[u8]) -> Option<Device> {
    let fields: Vec<&str> = DEVICE_FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "device_id")
        .collect();
    read_device(&object(data)?, &fields).ok()
}

/// Reads an import body: `{"devices": [...]}`, 1 to `MAX_BATCH` devices with unique ids.
fn import_body(data: &[u8]) -> Option<Vec<Device>> {
    let value = object(data)?;
    let obj = value.as_object()?;
    if obj.keys().any(|k| k != "devices") {
        return None;
    }
    let raw = obj.get("devices")?.as_array()?;
    if raw.is_empty() || raw.len() > MAX_BATCH {
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for v in raw {
        let d = read_device(v, DEVICE_FIELDS).ok()?;
        let id = d.device_id.clone()?;
        check_text("device_id", &id, MAX_DEVICE_ID_CHARS).ok()?;
        if !seen.insert(id) {
            return None;
        }
        out.push(d);
    }
    Some(out)
}

/// A device body: never panics; an accepted device re-encodes to a body accepted as the
/// same device.
pub fn gateway_device_body(data: &[u8]) {
    let Some(device) = put_body(data) else {
        return;
    };
    let encoded = serde_json::to_vec(&to_json(&device)).expect("serialises");
    assert_eq!(put_body(&encoded), Some(device), "device round trip");
}

/// An import body: never panics; an accepted batch holds 1 to `MAX_BATCH` devices with
/// unique ids and re-encodes to a body accepted as the same batch.
pub fn gateway_import_body(data: &[u8]) {
    let Some(devices) = import_body(data) else {
        return;
    };
    assert!((1..=MAX_BATCH).contains(&devices.len()));
    let body = serde_json::json!({ "devices": devices.iter().map(to_json).collect::<Vec<_>>() });
    let encoded = serde_json::to_vec(&body).expect("serialises");
    assert_eq!(import_body(&encoded), Some(devices), "import round trip");
}
