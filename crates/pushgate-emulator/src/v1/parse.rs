//! Reading a `messages:send` body into the proto's [`SendRequest`], with Google's proto3-JSON
//! front-end wording for what it refuses (docs/protocols.md, "FCM v1: request body",
//! "FCM v1: the Message resource"):
//! `Invalid JSON payload received. Unknown name "toen" at 'message': Cannot find field.` and
//! `Invalid value at 'message.data[0].value' (TYPE_STRING), 12`.

use pushgate_proto::v1::SendRequest;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Why a body was refused: the message, and the field it names (none for the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseFailure {
    /// `error.message` and the violation's description.
    pub message: String,
    /// The violation's `field`, when Google names one.
    pub field: Option<String>,
}

/// Parses `body`; a missing `message` reads as an empty one (it then fails the target check,
/// as Google's "Recipient of the message is not set.").
pub(crate) fn parse(body: &[u8]) -> Result<SendRequest, ParseFailure> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = match serde_path_to_error::deserialize::<_, SendRequest>(&mut de) {
        Ok(request) => request,
        Err(e)
            if e.path().iter().next().is_none()
                && e.inner().to_string().starts_with("missing field `message`") =>
        {
            SendRequest::default()
        }
        Err(e) => return Err(explain(body, e.path(), e.inner())),
    };
    if de.end().is_err() {
        return Err(ParseFailure {
            message: "Invalid JSON payload received. Unexpected token.".into(),
            field: None,
        });
    }
    Ok(request)
}

/// One step of a path, as serde_path_to_error recorded it.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Fields whose value is a `map<string, string>`: their keys become `[i].value` in paths.
const MAP_FIELDS: [&str; 2] = ["data", "headers"];

fn explain(
    body: &[u8],
    path: &serde_path_to_error::Path,
    error: &serde_json::Error,
) -> ParseFailure {
    use serde_json::error::Category;
    let steps = steps(path);
    let text = error.to_string();
    if matches!(
        error.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return ParseFailure {
            message: "Invalid JSON payload received. Unexpected token.".into(),
            field: None,
        };
    }
    let tree: Option<Ordered> = serde_json::from_slice(body).ok();
    if let Some(name) = text
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        // The recorded path ends with the unknown name itself; Google names its parent.
        let parent = match steps.split_last() {
            Some((Step::Key(last), parent)) if last == name => parent,
            _ => &steps[..],
        };
        let at = render(parent, tree.as_ref());
        let message = if at.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
        } else {
            format!(
                "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
            )
        };
        return ParseFailure {
            field: (!at.is_empty()).then_some(at),
            message,
        };
    }
    let at = render(&steps, tree.as_ref());
    let raw = tree
        .as_ref()
        .and_then(|t| t.at(&steps))
        .map(Ordered::to_json)
        .unwrap_or_default();
    let kind = if text.contains("expected a string") {
        Some("TYPE_STRING")
    } else if text.contains("expected a boolean") {
        Some("TYPE_BOOL")
    } else if text.contains("expected i32") {
        Some("TYPE_INT32")
    } else if text.contains("expected f32") {
        Some("TYPE_FLOAT")
    } else if text.starts_with("unknown variant") {
        Some("TYPE_ENUM")
    } else {
        None
    };
    let message = match kind {
        Some(kind) => format!("Invalid value at '{at}' ({kind}), {raw}"),
        None if !raw.is_empty() => format!("Invalid value at '{at}', {raw}"),
        None => format!("Invalid JSON payload received at '{at}'."),
    };
    ParseFailure {
        message,
        field: Some(at),
    }
}

/// Renders a path Google's way: `message.data[0].value`, `message.android.notification`.
fn render(steps: &[Step], tree: Option<&Ordered>) -> String {
    let mut out = String::new();
    let mut node = tree;
    let mut previous_key: Option<&str> = None;
    for step in steps {
        match step {
            Step::Key(key) => {
                let in_map = previous_key.is_some_and(|k| MAP_FIELDS.contains(&k));
                if in_map {
                    let index = node.and_then(|n| n.position(key)).unwrap_or(0);
                    out.push_str(&format!("[{index}].value"));
                } else {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                node = node.and_then(|n| n.get(key));
                previous_key = Some(key);
            }
            Step::Index(i) => {
                out.push_str(&format!("[{i}]"));
                node = node.and_then(|n| n.index(*i));
                previous_key = None;
            }
        }
    }
    out
}

/// A JSON value whose objects keep their keys in request order (the index in
/// `data[0].value` is the entry's position as sent).
#[derive(Debug)]
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar(Value),
}

impl Ordered {
    fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        match self {
            Ordered::Object(entries) => entries.iter().position(|(k, _)| k == key),
            _ => None,
        }
    }

    fn index(&self, i: usize) -> Option<&Ordered> {
        match self {
            Ordered::Array(items) => items.get(i),
            _ => None,
        }
    }

    fn at(&self, steps: &[Step]) -> Option<&Ordered> {
        steps.iter().try_fold(self, |node, step| match step {
            Step::Key(k) => node.get(k),
            Step::Index(i) => node.index(*i),
        })
    }

    /// Compact JSON text (objects and arrays abbreviated: Google prints scalars).
    fn to_json(&self) -> String {
        match self {
            Ordered::Scalar(v) => v.to_string(),
            Ordered::Object(_) => "{...}".into(),
            Ordered::Array(_) => "[...]".into(),
        }
    }
}

impl<'de> de::Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::from(v)))
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
            entries.push((k, v));
        }
        Ok(Ordered::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(body: &str) -> ParseFailure {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn unknown_names_are_placed() {
        let f = failure(r#"{"message":{"toen":"x"}}"#);
        assert_eq!(
            f.message,
            "Invalid JSON payload received. Unknown name \"toen\" at 'message': Cannot find field."
        );
        assert_eq!(f.field.as_deref(), Some("message"));
        let f = failure(r#"{"validate":true,"message":{}}"#);
        assert_eq!(
            f.message,
            "Invalid JSON payload received. Unknown name \"validate\": Cannot find field."
        );
        assert_eq!(f.field, None);
        let f = failure(r#"{"message":{"token":"t","android":{"colour":"x"}}}"#);
        assert!(f.message.contains("at 'message.android'"), "{}", f.message);
    }

    #[test]
    fn non_string_data_values_named_by_position() {
        let f = failure(r#"{"message":{"token":"t","data":{"a":"1","b":12}}}"#);
        assert_eq!(
            f.message,
            "Invalid value at 'message.data[1].value' (TYPE_STRING), 12"
        );
        assert_eq!(f.field.as_deref(), Some("message.data[1].value"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            failure("{").message,
            "Invalid JSON payload received. Unexpected token."
        );
        assert!(parse(b"{\"message\":{\"token\":\"t\"}} x").is_err());
    }
}
