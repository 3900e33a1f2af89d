//! The invariant of every fuzz target, one plain function per target.
//!
//! Each function feeds arbitrary bytes to one parser and panics when an invariant breaks: the
//! parser panicked, a parsed value did not survive encode → parse, or a bound was exceeded.
//! The cargo-fuzz crate (`fuzz/`) calls them from one-line targets, and the property tests in
//! `tests/` run them on generated input, so the normal suite covers every target.

#![warn(missing_docs)]

mod c2dm;
mod condition;
mod form;
mod gateway;
mod group;
mod iid;
mod legacy;
mod oauth;
mod v1;
mod xmpp;

pub use c2dm::{c2dm_send_response, client_login_response};
pub use condition::topic_condition;
pub use form::form_codec;
pub use gateway::{gateway_config, gateway_device_body, gateway_import_body, gateway_message_body};
pub use group::group_responses;
pub use iid::iid_responses;
pub use legacy::{legacy_json_response, legacy_plaintext_response};
pub use oauth::{oauth_token_response, service_account_key};
pub use v1::{v1_error_body, v1_send_response};
pub use xmpp::xmpp_stream;

/// One fuzz target: its name (the file `fuzz/fuzz_targets/<name>.rs`) and its invariant.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, so the tests can check that each fuzz target has a function and a property
/// test, and that no function lacks a fuzz target.
pub const TARGETS: &[Target] = &[
    ("legacy_json_response", legacy_json_response),
    ("legacy_plaintext_response", legacy_plaintext_response),
    ("v1_send_response", v1_send_response),
    ("v1_error_body", v1_error_body),
    ("oauth_token_response", oauth_token_response),
    ("service_account_key", service_account_key),
    ("c2dm_send_response", c2dm_send_response),
    ("client_login_response", client_login_response),
    ("iid_responses", iid_responses),
    ("group_responses", group_responses),
    ("topic_condition", topic_condition),
    ("form_codec", form_codec),
    ("gateway_message_body", gateway_message_body),
    ("gateway_device_body", gateway_device_body),
    ("gateway_import_body", gateway_import_body),
    ("gateway_config", gateway_config),
    ("xmpp_stream", xmpp_stream),
];

/// Serialises `value` and parses it back as the same type: the JSON round trip most
/// targets check. Panics when serialisation fails or the value changes.
pub(crate) fn json_round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_vec(value).expect("a parsed value serialises");
    let again: T = serde_json::from_slice(&text).expect("a serialised value parses");
    assert_eq!(&again, value, "JSON round trip changed the value");
}

/// True when two JSON values are equal, floats within the precision serde_json's default
/// (best-effort) float parsing keeps: a re-parsed float may differ in its last bit.
pub(crate) fn json_same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_same(v, w)))
        }
        _ => a == b,
    }
}
