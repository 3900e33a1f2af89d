//! The v1 `Message` resource and the send request/response around it (docs/protocols.md,
//! "FCM v1: request body" to "FCM v1: response").
//!
//! Every struct refuses unknown fields and accepts lowerCamelCase aliases for snake_case names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ProtoDuration;

/// `POST /v1/projects/{p}/messages:send` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Run every check but deliver nothing; the answer names `fake_message_id`.
    #[serde(
        default,
        alias = "validateOnly",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub validate_only: bool,
    /// The message.
    pub message: Message,
}

/// The 200 answer: the message's resource name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// `projects/{p}/messages/{id}`.
    pub name: String,
}

/// A v1 message: exactly one of `token`, `topic`, `condition`, plus payload and platform blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Output only: `projects/*/messages/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Registration token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Topic name, without `/topics/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Condition over topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// String key/values for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Cross-platform notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// Android options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<AndroidConfig>,
    /// Web Push options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webpush: Option<WebpushConfig>,
    /// APNs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns: Option<ApnsConfig>,
    /// Options for every platform.
    #[serde(default, alias = "fcmOptions", skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<FcmOptions>,
}

/// Cross-platform notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// `fcm_options` of the message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmOptions {
    /// Analytics label, `^[a-zA-Z0-9-_.~%]{1,50}$`.
    #[serde(
        default,
        alias = "analyticsLabel",
        skip_serializing_if = "Option::is_none"
    )]
    pub analytics_label: Option<String>,
}

/// Android delivery priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AndroidPriority {
    /// Normal priority.
    #[serde(rename = "NORMAL", alias = "normal")]
    Normal,
    /// High priority: wakes the device.
    #[serde(rename = "HIGH", alias = "high")]
    High,
}

/// Android-specific options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidConfig {
    /// Collapse key.
    #[serde(
        default,
        alias = "collapseKey",
        skip_serializing_if = "Option::is_none"
    )]
    pub collapse_key: Option<String>,
    /// `NORMAL` or `HIGH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<AndroidPriority>,
    /// Time to live, `"3.5s"`; at most four weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<ProtoDuration>,
    /// Deliver only to this package.
    #[serde(
        default,
        alias = "restrictedPackageName",
        skip_serializing_if = "Option::is_none"
    )]
    pub restricted_package_name: Option<String>,
    /// Overrides the message's data on Android.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Android notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<AndroidNotification>,
    /// Android analytics options.
    #[serde(default, alias = "fcmOptions", skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<AndroidFcmOptions>,
    /// Deliver in direct-boot mode.
    #[serde(
        default,
        alias = "directBootOk",
        skip_serializing_if = "Option::is_none"
    )]
    pub direct_boot_ok: Option<bool>,
    /// Newer SDKs: deliver on constrained bandwidth.
    #[serde(
        default,
        alias = "bandwidthConstrainedOk",
        skip_serializing_if = "Option::is_none"
    )]
    pub bandwidth_constrained_ok: Option<bool>,
    /// Newer SDKs: deliver over satellite.
    #[serde(
        default,
        alias = "restrictedSatelliteOk",
        skip_serializing_if = "Option::is_none"
    )]
    pub restricted_satellite_ok: Option<bool>,
}

/// `android.fcm_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidFcmOptions {
    /// Analytics label.
    #[serde(
        default,
        alias = "analyticsLabel",
        skip_serializing_if = "Option::is_none"
    )]
    pub analytics_label: Option<String>,
}

/// A colour as `google.type.Color`: floats 0..1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Color {
    /// Red, 0..1.
    #[serde(default)]
    pub red: f32,
    /// Green, 0..1.
    #[serde(default)]
    pub green: f32,
    /// Blue, 0..1.
    #[serde(default)]
    pub blue: f32,
    /// Alpha, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
}

/// LED settings of an Android notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightSettings {
    /// LED colour.
    pub color: Color,
    /// How long the LED is on.
    #[serde(
        default,
        alias = "lightOnDuration",
        skip_serializing_if = "Option::is_none"
    )]
    pub light_on_duration: Option<ProtoDuration>,
    /// How long the LED is off.
    #[serde(
        default,
        alias = "lightOffDuration",
        skip_serializing_if = "Option::is_none"
    )]
    pub light_off_duration: Option<ProtoDuration>,
}

/// Android notification fields (docs/protocols.md, "FCM v1: the Message resource").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidNotification {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Drawable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Sound file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// Replaces notifications with the same tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Activity intent action.
    #[serde(
        default,
        alias = "clickAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub click_action: Option<String>,
    /// Localised body key.
    #[serde(default, alias = "bodyLocKey", skip_serializing_if = "Option::is_none")]
    pub body_loc_key: Option<String>,
    /// Localised body arguments.
    #[serde(
        default,
        alias = "bodyLocArgs",
        skip_serializing_if = "Option::is_none"
    )]
    pub body_loc_args: Option<Vec<String>>,
    /// Localised title key.
    #[serde(
        default,
        alias = "titleLocKey",
        skip_serializing_if = "Option::is_none"
    )]
    pub title_loc_key: Option<String>,
    /// Localised title arguments.
    #[serde(
        default,
        alias = "titleLocArgs",
        skip_serializing_if = "Option::is_none"
    )]
    pub title_loc_args: Option<Vec<String>>,
    /// Android O channel.
    #[serde(default, alias = "channelId", skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// Accessibility ticker text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticker: Option<String>,
    /// Stays when clicked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<bool>,
    /// RFC 3339 timestamp.
    #[serde(default, alias = "eventTime", skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// Only on this device.
    #[serde(default, alias = "localOnly", skip_serializing_if = "Option::is_none")]
    pub local_only: Option<bool>,
    /// `PRIORITY_UNSPECIFIED|MIN|LOW|DEFAULT|HIGH|MAX`.
    #[serde(
        default,
        alias = "notificationPriority",
        skip_serializing_if = "Option::is_none"
    )]
    pub notification_priority: Option<String>,
    /// Use the default sound.
    #[serde(
        default,
        alias = "defaultSound",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_sound: Option<bool>,
    /// Use the default vibration.
    #[serde(
        default,
        alias = "defaultVibrateTimings",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_vibrate_timings: Option<bool>,
    /// Use the default LED settings.
    #[serde(
        default,
        alias = "defaultLightSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_light_settings: Option<bool>,
    /// Vibration pattern.
    #[serde(
        default,
        alias = "vibrateTimings",
        skip_serializing_if = "Option::is_none"
    )]
    pub vibrate_timings: Option<Vec<ProtoDuration>>,
    /// `VISIBILITY_UNSPECIFIED|PRIVATE|PUBLIC|SECRET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Badge count.
    #[serde(
        default,
        alias = "notificationCount",
        skip_serializing_if = "Option::is_none"
    )]
    pub notification_count: Option<i32>,
    /// LED settings.
    #[serde(
        default,
        alias = "lightSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub light_settings: Option<LightSettings>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `ALLOW|DENY|IF_PRIORITY_LOWERED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// APNs options: headers and a free-form payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// APNs request headers (`apns-priority`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The APNs payload (`aps` plus custom keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// APNs analytics options.
    #[serde(default, alias = "fcmOptions", skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<ApnsFcmOptions>,
    /// Live Activity push token.
    #[serde(
        default,
        alias = "liveActivityToken",
        skip_serializing_if = "Option::is_none"
    )]
    pub live_activity_token: Option<String>,
}

/// `apns.fcm_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsFcmOptions {
    /// Analytics label.
    #[serde(
        default,
        alias = "analyticsLabel",
        skip_serializing_if = "Option::is_none"
    )]
    pub analytics_label: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Web Push options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebpushConfig {
    /// Web Push headers (`TTL`, `Urgency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Overrides the message's data on the web.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Any Web Notification API property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Value>,
    /// Web options.
    #[serde(default, alias = "fcmOptions", skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<WebpushFcmOptions>,
}

/// `webpush.fcm_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebpushFcmOptions {
    /// HTTPS link opened on click.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Analytics label.
    #[serde(
        default,
        alias = "analyticsLabel",
        skip_serializing_if = "Option::is_none"
    )]
    pub analytics_label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_request_parses() {
        let r: SendRequest = serde_json::from_value(json!({
            "validate_only": false,
            "message": { "token": "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1",
                         "notification": { "title": "FCM Message", "body": "hello" },
                         "data": { "score": "850", "time": "2:45" } } }))
        .unwrap();
        assert_eq!(r.message.data.as_ref().unwrap()["score"], "850");
        assert!(!r.validate_only);
    }

    #[test]
    fn camel_case_and_snake_case_both_accepted() {
        let camel: SendRequest = serde_json::from_value(json!({
            "validateOnly": true,
            "message": {"topic": "t", "android": {"collapseKey": "c", "ttl": "3.5s",
                "restrictedPackageName": "com.x", "directBootOk": true, "priority": "high",
                "notification": {"clickAction": "OPEN", "channelId": "ch"}},
                "fcmOptions": {"analyticsLabel": "l"}}}))
        .unwrap();
        let snake: SendRequest = serde_json::from_value(json!({
            "validate_only": true,
            "message": {"topic": "t", "android": {"collapse_key": "c", "ttl": "3.5s",
                "restricted_package_name": "com.x", "direct_boot_ok": true, "priority": "HIGH",
                "notification": {"click_action": "OPEN", "channel_id": "ch"}},
                "fcm_options": {"analytics_label": "l"}}}))
        .unwrap();
        assert_eq!(camel, snake);
        assert!(camel.validate_only);
        // Sent in snake_case.
        let out = serde_json::to_value(&camel).unwrap();
        assert_eq!(out["message"]["android"]["collapse_key"], "c");
        assert_eq!(out["message"]["android"]["priority"], "HIGH");
    }

    #[test]
    fn unknown_fields_refused_with_their_name() {
        let err = serde_json::from_value::<SendRequest>(json!({"message": {"toen": "x"}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("toen"), "{err}");
        let err = serde_json::from_value::<SendRequest>(
            json!({"message": {"token": "x", "android": {"ttl": "3.5s", "colour": "x"}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn data_values_must_be_strings() {
        assert!(
            serde_json::from_value::<SendRequest>(
                json!({"message": {"token": "x", "data": {"a": 12}}})
            )
            .is_err()
        );
    }
}
