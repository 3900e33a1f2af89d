//! Property test: CCS JSON shapes survive encoding and decoding unchanged.

use proptest::prelude::*;
use pushgate_proto::ccs::{
    Ack, AppAck, AppMessage, DownstreamMessage, Nack, NackCode, Receipt, ReceiptData,
    ServerMessage, UpstreamMessage,
};
use serde_json::{Map, Value};

fn arb_data() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map("[a-z]{1,8}", "\\PC{0,16}", 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn arb_code() -> impl Strategy<Value = NackCode> {
    prop_oneof![
        proptest::sample::select(NackCode::ALL.to_vec()),
        "[A-Z_]{1,20}".prop_map(|s| NackCode::parse(&s)),
    ]
}

fn arb_server_message() -> impl Strategy<Value = ServerMessage> {
    let id = "\\PC{1,24}";
    prop_oneof![
        (
            proptest::option::of(id),
            id,
            proptest::option::of("[A-Za-z0-9_-]{1,40}")
        )
            .prop_map(|(from, message_id, registration_id)| {
                ServerMessage::Ack(Ack {
                    from,
                    message_id,
                    registration_id,
                })
            }),
        (
            proptest::option::of(id),
            id,
            arb_code(),
            proptest::option::of("\\PC{0,40}")
        )
            .prop_map(|(from, message_id, error, error_description)| {
                ServerMessage::Nack(Nack {
                    from,
                    message_id,
                    error,
                    error_description,
                })
            }),
        (
            id,
            "[A-Za-z0-9_-]{1,40}",
            proptest::option::of("[a-z.]{1,20}")
        )
            .prop_map(|(original, token, category)| {
                ServerMessage::Receipt(Receipt {
                    category,
                    data: ReceiptData {
                        message_status: "MESSAGE_SENT_TO_DEVICE".into(),
                        original_message_id: original.clone(),
                        device_registration_id: token,
                        message_sent_timestamp: None,
                    },
                    message_id: format!("dr2:{original}"),
                    from: "gcm.googleapis.com".into(),
                })
            }),
        (
            id,
            "[A-Za-z0-9_-]{1,40}",
            arb_data(),
            proptest::option::of("[a-z.]{1,20}"),
            proptest::option::of(0u64..86_400)
        )
            .prop_map(|(message_id, from, data, category, time_to_live)| {
                ServerMessage::Upstream(UpstreamMessage {
                    category,
                    data,
                    message_id,
                    from,
                    time_to_live,
                })
            }),
        Just(ServerMessage::Control {
            control_type: "CONNECTION_DRAINING".into()
        }),
    ]
}

proptest! {
    #[test]
    fn server_messages_round_trip(message in arb_server_message()) {
        let json = message.to_json();
        let back = ServerMessage::parse(&json).unwrap();
        prop_assert_eq!(back, message);
    }

    #[test]
    fn downstream_round_trips(
        to in "[A-Za-z0-9_-]{1,40}",
        message_id in "\\PC{1,24}",
        data in proptest::option::of(arb_data()),
        ttl in proptest::option::of(0u32..=2_419_200),
        receipt in proptest::option::of(any::<bool>()),
    ) {
        let m = DownstreamMessage {
            to: Some(to),
            message_id,
            data,
            time_to_live: ttl,
            delivery_receipt_requested: receipt,
            ..Default::default()
        };
        let back: DownstreamMessage = serde_json::from_str(&m.to_json()).unwrap();
        prop_assert_eq!(&back, &m);
        let classified = AppMessage::classify(serde_json::from_str(&m.to_json()).unwrap());
        prop_assert!(matches!(classified, Some(AppMessage::Downstream(_))));
    }

    #[test]
    fn app_acks_classify(to in "\\PC{1,30}", message_id in "\\PC{1,30}") {
        let ack = AppAck { to: to.clone(), message_id: message_id.clone() };
        let value: Value = serde_json::from_str(&ack.to_json()).unwrap();
        prop_assert_eq!(
            AppMessage::classify(value),
            Some(AppMessage::Ack { to: Some(to), message_id: Some(message_id) })
        );
    }
}
