//! Property test: every legacy JSON request survives encoding and decoding unchanged.

use proptest::prelude::*;
use pushgate_proto::legacy::{JsonRequest, MessageOptions, Notification, Priority};
use serde_json::{Map, Value};

fn arb_options() -> impl Strategy<Value = MessageOptions> {
    (
        proptest::option::of("\\PC{0,20}"),
        proptest::option::of(prop_oneof![Just(Priority::Normal), Just(Priority::High)]),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of("[a-z.]{1,30}"),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                collapse_key,
                priority,
                content_available,
                mutable_content,
                delay_while_idle,
                time_to_live,
                restricted_package_name,
                dry_run,
            )| {
                MessageOptions {
                    collapse_key,
                    priority,
                    content_available,
                    mutable_content,
                    delay_while_idle,
                    time_to_live,
                    restricted_package_name,
                    dry_run,
                }
            },
        )
}

fn arb_data() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(
        "\\PC{1,12}",
        prop_oneof![
            "\\PC{0,40}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
        ],
        0..8,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn arb_notification() -> impl Strategy<Value = Notification> {
    (
        proptest::option::of("\\PC{0,30}"),
        proptest::option::of("\\PC{0,60}"),
        proptest::option::of("#[0-9a-f]{6}"),
        proptest::option::of(proptest::collection::vec("\\PC{0,10}", 0..3)),
        proptest::collection::btree_map("x_[a-z]{1,8}", "\\PC{0,10}".prop_map(Value::String), 0..3),
    )
        .prop_map(|(title, body, color, body_loc_args, other)| Notification {
            title,
            body,
            color,
            body_loc_args,
            other,
            ..Notification::default()
        })
}

fn arb_request() -> impl Strategy<Value = JsonRequest> {
    (
        prop_oneof![
            "[A-Za-z0-9:_-]{1,60}".prop_map(|t| (Some(t), None, None)),
            proptest::collection::vec("[A-Za-z0-9:_-]{1,60}", 1..20).prop_map(|ids| (
                None,
                Some(ids),
                None
            )),
            "'[a-z]{1,8}' in topics".prop_map(|c| (None, None, Some(c))),
        ],
        arb_options(),
        proptest::option::of(arb_data()),
        proptest::option::of(arb_notification()),
    )
        .prop_map(
            |((to, registration_ids, condition), options, data, notification)| JsonRequest {
                to,
                registration_ids,
                condition,
                notification_key: None,
                options,
                data,
                notification,
            },
        )
}

proptest! {
    #[test]
    fn json_request_round_trips(request in arb_request()) {
        let text = serde_json::to_string(&request).unwrap();
        let back: JsonRequest = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, request);
    }
}
