//! The stored [`Payload`] in each protocol's own message types.

use std::collections::BTreeMap;
use std::time::Duration;

use pushgate_proto::legacy;
use pushgate_proto::v1;

use crate::message::{Notification, Payload, Priority};

/// The legacy (and CCS) notification object.
pub(super) fn legacy_notification(n: &Notification) -> legacy::Notification {
    legacy::Notification {
        title: n.title.clone(),
        body: n.body.clone(),
        android_channel_id: n.channel_id.clone(),
        icon: n.icon.clone(),
        sound: n.sound.clone(),
        tag: n.tag.clone(),
        color: n.color.clone(),
        click_action: n.click_action.clone(),
        image: n.image.clone(),
        ..Default::default()
    }
}

/// The legacy (and CCS) priority.
pub(super) fn legacy_priority(p: Priority) -> legacy::Priority {
    match p {
        Priority::High => legacy::Priority::High,
        Priority::Normal => legacy::Priority::Normal,
    }
}

/// The FCM v1 message to one token: data and the portable notification at the top, the
/// Android-only options under `android`.
pub(super) fn v1_message(p: &Payload, token: &str) -> v1::Message {
    let notification = p.notification.as_ref().map(|n| v1::Notification {
        title: n.title.clone(),
        body: n.body.clone(),
        image: n.image.clone(),
    });
    let android_notification = p.notification.as_ref().and_then(|n| {
        let a = v1::AndroidNotification {
            icon: n.icon.clone(),
            color: n.color.clone(),
            sound: n.sound.clone(),
            tag: n.tag.clone(),
            click_action: n.click_action.clone(),
            channel_id: n.channel_id.clone(),
            ..Default::default()
        };
        (a != v1::AndroidNotification::default()).then_some(a)
    });
    let android = v1::AndroidConfig {
        collapse_key: p.collapse_key.clone(),
        priority: p.priority.map(|pr| match pr {
            Priority::High => v1::AndroidPriority::High,
            Priority::Normal => v1::AndroidPriority::Normal,
        }),
        ttl: Some(v1::ProtoDuration(Duration::from_secs(p.ttl_secs.into()))),
        notification: android_notification,
        ..Default::default()
    };
    v1::Message {
        token: Some(token.to_string()),
        data: (!p.data.is_empty()).then(|| p.data.clone().into_iter().collect::<BTreeMap<_, _>>()),
        notification,
        android: Some(android),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_messages_put_android_options_under_android() {
        let p = Payload {
            data: [("k".to_string(), "v".to_string())].into(),
            notification: Some(Notification {
                title: Some("T".into()),
                icon: Some("ic".into()),
                ..Default::default()
            }),
            collapse_key: Some("c".into()),
            priority: Some(Priority::High),
            ttl_secs: 90,
            ..Default::default()
        };
        let json = serde_json::to_value(v1_message(&p, "tok")).unwrap();
        assert_eq!(json["token"], "tok");
        assert_eq!(json["data"]["k"], "v");
        assert_eq!(json["notification"]["title"], "T");
        assert_eq!(json["android"]["collapse_key"], "c");
        assert_eq!(json["android"]["priority"], "HIGH");
        assert_eq!(json["android"]["ttl"], "90s");
        assert_eq!(json["android"]["notification"]["icon"], "ic");
        assert!(json["notification"].get("icon").is_none());
    }
}
