//! The legacy HTTP sender against the in-process emulator, over real sockets.
//!
//! Expected values come from docs/protocols.md, "Legacy HTTP" (error codes, limits, retry rules),
//! not from the
//! code under test.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Emu, fast_policy, truncated};
use pushgate_client::legacy::{
    ErrorCode, JsonMessage, LegacyError, LegacySender, PlainTextMessage,
};
use pushgate_client::{HttpConfig, RetryPolicy};
use pushgate_proto::{FailureScope, Outcome, OutcomeKind, RetryAfter};
use serde_json::{Value, json};

fn kinds(outcomes: &[(String, Outcome)]) -> Vec<OutcomeKind> {
    outcomes.iter().map(|(_, o)| o.kind()).collect()
}

fn reason(outcome: &Outcome) -> &str {
    outcome.reason().unwrap_or("")
}

#[tokio::test]
async fn a_message_reaches_the_device_with_its_data_and_options() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/fcm/send");
    let message = JsonMessage::new([token.clone()])
        .data("score", "4x8")
        .data("time", "15:16.2342")
        .collapse_key("score_update")
        .time_to_live(108);

    let result = sender.send(&message).await.unwrap();

    assert_eq!(result.outcomes().len(), 1);
    let (answered_token, outcome) = &result.outcomes()[0];
    assert_eq!(answered_token, &token);
    assert_eq!(outcome.kind(), OutcomeKind::Delivered);
    let message_id = outcome.message_id().unwrap().to_string();
    assert_eq!(
        result.success(),
        HashMap::from([(token.as_str(), message_id.as_str())])
    );
    assert!(result.canonical().is_empty() && result.not_registered().is_empty());
    assert!(result.failed().is_empty() && !result.needs_retry() && result.retry().is_none());
    assert_eq!(result.multicast_ids().len(), 1);

    let inbox = emu.inbox(&token).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["message_id"], json!(message_id));
    assert_eq!(inbox[0]["via"], "legacy-json");
    assert_eq!(
        inbox[0]["data"],
        json!({"score": "4x8", "time": "15:16.2342"})
    );
    assert_eq!(inbox[0]["collapse_key"], "score_update");
    assert_eq!(inbox[0]["time_to_live"], 108);
    emu.shutdown().await;
}

#[tokio::test]
async fn multicast_of_2500_is_chunked_and_merged_in_request_order() {
    let emu = Emu::start().await;
    let mut tokens = emu.devices(2500).await;
    // Failures at known positions, in every chunk, prove outcome i belongs to token i.
    let originals = tokens.clone();
    for i in [5, 1500, 2400] {
        tokens[i] = truncated(&tokens[i]);
    }
    emu.uninstall(&tokens[1234]).await;
    let sender = emu.legacy("/gcm/send");
    let message = JsonMessage::new(tokens.clone()).data("wave", "one");

    let result = sender.send(&message).await.unwrap();

    let outcomes = result.outcomes();
    assert_eq!(outcomes.len(), 2500);
    assert_eq!(
        result.multicast_ids().len(),
        3,
        "1000 + 1000 + 500 ids: three requests"
    );
    for (i, (token, outcome)) in outcomes.iter().enumerate() {
        assert_eq!(token, &tokens[i], "position {i}");
        match i {
            5 | 1500 | 2400 => assert_eq!(reason(outcome), "InvalidRegistration", "{i}"),
            1234 => assert_eq!(reason(outcome), "NotRegistered", "{i}"),
            _ => assert_eq!(outcome.kind(), OutcomeKind::Delivered, "{i}"),
        }
    }
    assert_eq!(result.success().len(), 2496);
    assert_eq!(result.not_registered(), [tokens[1234].as_str()]);
    assert_eq!(result.failed().len(), 3);
    for i in [0, 999, 1000, 1999, 2000, 2499] {
        let inbox = emu.inbox(&tokens[i]).await;
        assert_eq!(inbox.len(), 1, "token {i}");
        assert_eq!(inbox[0]["token"], json!(tokens[i]));
        assert_eq!(
            inbox[0]["message_id"].as_str(),
            outcomes[i].1.message_id(),
            "inbox of token {i} holds the message id reported at position {i}"
        );
        assert_eq!(inbox[0]["data"]["wave"], "one");
    }
    // The devices behind the truncated tokens got nothing.
    assert!(emu.inbox(&originals[1500]).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn canonical_id_after_rotate() {
    let emu = Emu::start().await;
    let old = emu.device().await;
    let new = emu.rotate(&old).await;
    assert_ne!(old, new);
    let sender = emu.legacy("/gcm/send");

    let result = sender
        .send(&JsonMessage::new([old.clone()]).data("k", "v"))
        .await
        .unwrap();

    assert_eq!(
        result.canonical(),
        HashMap::from([(old.as_str(), new.as_str())])
    );
    // Still a success (docs/protocols.md, "Legacy HTTP: canonical ids"): the message id is there
    // too.
    assert_eq!(result.success().len(), 1);
    assert!(
        matches!(&result.outcomes()[0].1, Outcome::Rotated { new_token, .. } if *new_token == new)
    );
    assert_eq!(emu.inbox(&new).await.len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn not_registered_after_uninstall() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    emu.uninstall(&token).await;
    let sender = emu.legacy("/gcm/send");

    let result = sender
        .send(&JsonMessage::new([token.clone()]).data("k", "v"))
        .await
        .unwrap();

    assert_eq!(result.not_registered(), [token.as_str()]);
    assert!(
        result.failed().is_empty(),
        "NotRegistered is not in failed()"
    );
    assert!(result.success().is_empty());
    assert!(!result.needs_retry());
    assert_eq!(result.outcomes()[0].1.kind(), OutcomeKind::TokenDead);
    emu.shutdown().await;
}

#[tokio::test]
async fn every_per_recipient_error_class() {
    let emu = Emu::start().await;
    emu.add_sender("222222", "second-key").await;
    let ok = emu.device().await;
    let good_for_truncation = emu.device().await;
    let other_sender = emu
        .create_devices(json!({"sender_id": "222222"}))
        .await
        .remove(0);
    let other_package = emu
        .create_devices(json!({"package": "com.other.app"}))
        .await
        .remove(0);
    let limited = emu
        .create_devices(json!({"rate_limit_per_minute": 1}))
        .await
        .remove(0);
    let sender = emu.legacy("/gcm/send");
    // Use up the rate-limited device's quota.
    let first = sender
        .send(&JsonMessage::new([limited.clone()]).data("n", "1"))
        .await
        .unwrap();
    assert_eq!(first.outcomes()[0].1.kind(), OutcomeKind::Delivered);

    let bad = truncated(&good_for_truncation);
    let tokens = vec![
        ok.clone(),
        bad.clone(),
        other_sender.clone(),
        other_package.clone(),
        limited.clone(),
    ];
    let message = JsonMessage::new(tokens.clone())
        .data("n", "2")
        .restricted_package_name(pushgate_emulator::DEFAULT_PACKAGE);
    let result = sender.send(&message).await.unwrap();

    use OutcomeKind::*;
    assert_eq!(
        kinds(result.outcomes()),
        [Delivered, TokenDead, TokenDead, TokenDead, Throttled]
    );
    let reasons: Vec<&str> = result.outcomes().iter().map(|(_, o)| reason(o)).collect();
    assert_eq!(
        reasons,
        [
            "",
            "InvalidRegistration",
            "MismatchSenderId",
            "InvalidPackageName",
            "DeviceMessageRateExceeded"
        ]
    );
    assert_eq!(
        result.failed(),
        HashMap::from([
            (bad.as_str(), ErrorCode::InvalidRegistration),
            (other_sender.as_str(), ErrorCode::MismatchSenderId),
            (other_package.as_str(), ErrorCode::InvalidPackageName),
        ])
    );
    // Only the throttled device is worth retrying, with the same data and options.
    let retry = result.retry().unwrap();
    assert_eq!(retry.registration_ids().unwrap(), [limited.as_str()]);
    assert_eq!(retry.data_payload(), message.data_payload());
    assert_eq!(
        retry.options().restricted_package_name.as_deref(),
        Some(pushgate_emulator::DEFAULT_PACKAGE)
    );

    // The second sender's own key reaches its device.
    let second = emu.legacy_with_key("second-key", "/gcm/send");
    let result = second
        .send(&JsonMessage::new([other_sender.clone()]).data("n", "3"))
        .await
        .unwrap();
    assert_eq!(result.outcomes()[0].1.kind(), Delivered);
    emu.shutdown().await;
}

#[tokio::test]
async fn injected_unavailable_and_internal_error_give_a_retry_subset() {
    let emu = Emu::start().await;
    let tokens = emu.devices(4).await;
    emu.fault(json!({"token": tokens[1], "error": "Unavailable", "count": 1}))
        .await;
    emu.fault(json!({"token": tokens[3], "error": "InternalServerError", "count": 1}))
        .await;
    let sender = emu.legacy("/gcm/send");
    let message = JsonMessage::new(tokens.clone()).data("k", "v");

    let mut result = sender.send(&message).await.unwrap();
    use OutcomeKind::*;
    assert_eq!(
        kinds(result.outcomes()),
        [Delivered, RetryLater, Delivered, RetryLater]
    );
    assert_eq!(reason(&result.outcomes()[1].1), "Unavailable");
    assert_eq!(reason(&result.outcomes()[3].1), "InternalServerError");
    // Per-recipient errors concern their recipient: the others were delivered.
    assert_eq!(result.outcomes()[1].1.scope(), Some(FailureScope::Token));
    assert_eq!(result.outcomes()[3].1.scope(), Some(FailureScope::Token));
    assert!(result.failed().is_empty());
    let retry = result.retry().unwrap();
    assert_eq!(
        retry.registration_ids().unwrap(),
        [tokens[1].clone(), tokens[3].clone()]
    );

    // gcm-client's loop by hand: send the retry, merge it back.
    let second = sender.send(&retry).await.unwrap();
    result.merge(second).unwrap();
    assert_eq!(kinds(result.outcomes()), [Delivered; 4]);
    assert_eq!(result.multicast_ids().len(), 2);
    for token in &tokens {
        assert_eq!(emu.inbox(token).await.len(), 1, "exactly one copy each");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn send_with_retries_recovers_from_per_recipient_faults() {
    let emu = Emu::start().await;
    let tokens = emu.devices(3).await;
    emu.fault(json!({"token": tokens[0], "error": "Unavailable", "count": 2}))
        .await;
    emu.fault(json!({"token": tokens[2], "error": "InternalServerError", "count": 1}))
        .await;
    let rotated = emu.rotate(&tokens[1]).await;
    let sender = emu.legacy("/gcm/send");

    let result = sender
        .send_with_retries(
            &JsonMessage::new(tokens.clone()).data("k", "v"),
            &fast_policy(),
        )
        .await
        .unwrap();

    use OutcomeKind::*;
    assert_eq!(kinds(result.outcomes()), [Delivered, Rotated, Delivered]);
    // The canonical id of the first round survives the later rounds.
    assert_eq!(
        result.canonical(),
        HashMap::from([(tokens[1].as_str(), rotated.as_str())])
    );
    assert_eq!(result.multicast_ids().len(), 3, "three rounds");
    for token in [&tokens[0], &rotated, &tokens[2]] {
        assert_eq!(emu.inbox(token).await.len(), 1);
    }
    assert_eq!(emu.stats().await["duplicates"], 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn still_failing_ids_keep_their_last_retriable_outcome() {
    let emu = Emu::start().await;
    let tokens = emu.devices(2).await;
    emu.fault(json!({"token": tokens[1], "error": "Unavailable", "count": 100}))
        .await;
    let sender = emu.legacy("/gcm/send");
    let policy = fast_policy().with_max_attempts(3);

    let result = sender
        .send_with_retries(&JsonMessage::new(tokens.clone()), &policy)
        .await
        .unwrap();

    assert_eq!(result.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    assert_eq!(reason(&result.outcomes()[1].1), "Unavailable");
    assert_eq!(result.multicast_ids().len(), 3, "max_attempts = 3");
    assert_eq!(
        result.retry().unwrap().registration_ids().unwrap(),
        [tokens[1].clone()]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn whole_request_5xx_is_retried_and_attempts_are_bounded() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/gcm/send");
    let message = JsonMessage::new([token.clone()]).data("k", "v");

    // Three 503s and three attempts: the last error comes back.
    emu.fault(json!({"path": "/gcm/send", "status": 503, "count": 3}))
        .await;
    let err = sender
        .send_with_retries(&message, &fast_policy().with_max_attempts(3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LegacyError::Unavailable { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retriable());
    // The server answered, for the request as a whole: the message, not the channel.
    assert_eq!(err.outcome().scope(), Some(FailureScope::Message));
    assert!(emu.inbox(&token).await.is_empty());
    // All three faults were used up: exactly three attempts were made.
    let again = sender.send(&message).await.unwrap();
    assert_eq!(again.outcomes()[0].1.kind(), OutcomeKind::Delivered);

    // A 500 then a success: delivered once.
    emu.fault(json!({"path": "/gcm/send", "status": 500, "count": 1}))
        .await;
    let result = sender
        .send_with_retries(&message, &fast_policy())
        .await
        .unwrap();
    assert_eq!(result.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    assert_eq!(emu.inbox(&token).await.len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn one_failed_chunk_of_a_big_multicast_is_retried_alone() {
    let emu = Emu::start().await;
    let tokens = emu.devices(2500).await;
    let sender = emu.legacy("/gcm/send");
    let message = JsonMessage::new(tokens.clone()).data("k", "v");

    emu.fault(json!({"path": "/gcm/send", "status": 503, "count": 1}))
        .await;
    let result = sender.send(&message).await.unwrap();
    let failed: Vec<usize> = result
        .outcomes()
        .iter()
        .enumerate()
        .filter(|(_, (_, o))| o.kind() == OutcomeKind::RetryLater)
        .map(|(i, _)| i)
        .collect();
    // Exactly one chunk failed, whichever the fault hit: [0,1000), [1000,2000) or [2000,2500).
    let chunk: Vec<usize> = match failed.first() {
        Some(0) => (0..1000).collect(),
        Some(1000) => (1000..2000).collect(),
        Some(2000) => (2000..2500).collect(),
        other => panic!("unexpected first failed position {other:?}"),
    };
    assert_eq!(failed, chunk);
    assert_eq!(result.success().len(), 2500 - chunk.len());
    assert_eq!(result.multicast_ids().len(), 2);

    emu.fault(json!({"path": "/gcm/send", "status": 503, "count": 1}))
        .await;
    let message2 = JsonMessage::new(tokens.clone()).data("k", "second");
    let result = sender
        .send_with_retries(&message2, &fast_policy())
        .await
        .unwrap();
    assert_eq!(result.success().len(), 2500);
    for i in [0, 1000, 2499] {
        let inbox = emu.inbox(&tokens[i]).await;
        let seconds = inbox.iter().filter(|m| m["data"]["k"] == "second").count();
        assert_eq!(seconds, 1, "token {i}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_key_is_an_authentication_error_and_not_retried() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy_with_key("not-the-key", "/gcm/send");
    let message = JsonMessage::new([token.clone()]);

    let err = sender.send(&message).await.unwrap_err();
    assert!(matches!(err, LegacyError::Authentication), "{err:?}");
    assert!(!err.is_retriable());

    let before = emu.stats().await["requests"].as_u64().unwrap();
    let err = sender
        .send_with_retries(&message, &fast_policy())
        .await
        .unwrap_err();
    assert!(matches!(err, LegacyError::Authentication), "{err:?}");
    let after = emu.stats().await["requests"].as_u64().unwrap();
    assert_eq!(after, before + 1, "a 401 is not retried");
    assert!(emu.inbox(&token).await.is_empty());
    // Plain text too.
    let err = sender
        .send_plain(&PlainTextMessage::new(token.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, LegacyError::Authentication), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_400_surfaces_the_server_text() {
    let emu = Emu::start().await;
    let token = emu.device().await;

    // What the service says about JSON the client would never build.
    let raw = emu
        .http()
        .post(emu.url("/gcm/send"))
        .header(
            "Authorization",
            format!("key={}", pushgate_emulator::DEFAULT_API_KEY),
        )
        .header("Content-Type", "application/json")
        .body("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let text = raw.text().await.unwrap();
    assert!(text.starts_with("JSON_PARSING_ERROR"), "{text:?}");

    // An injected 400 reaches the client's error with the server's text.
    emu.fault(
        json!({"path": "/gcm/send", "status": 400, "error": "InvalidParameters", "count": 2}),
    )
    .await;
    let raw_text = emu
        .http()
        .post(emu.url("/gcm/send"))
        .header(
            "Authorization",
            format!("key={}", pushgate_emulator::DEFAULT_API_KEY),
        )
        .header("Content-Type", "application/json")
        .body(json!({"to": token}).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sender = emu.legacy("/gcm/send");
    let err = sender
        .send_with_retries(&JsonMessage::new([token.clone()]), &fast_policy())
        .await
        .unwrap_err();
    match &err {
        LegacyError::MalformedRequest { body } => {
            assert_eq!(body, raw_text.trim_end());
            assert!(body.contains("InvalidParameters"), "{body:?}");
        }
        other => panic!("expected MalformedRequest, got {other:?}"),
    }
    assert!(!err.is_retriable());
    assert!(emu.inbox(&token).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_for() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/gcm/send");
    let message = JsonMessage::new([token.clone()]);

    emu.fault(json!({"path": "/gcm/send", "status": 503, "retry_after": "1", "count": 1}))
        .await;
    let err = sender.send(&message).await.unwrap_err();
    match err {
        LegacyError::Unavailable {
            status,
            retry_after,
        } => {
            assert_eq!(status, 503);
            assert_eq!(retry_after, Some(RetryAfter::Seconds(1)));
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }

    emu.fault(json!({"path": "/gcm/send", "status": 503, "retry_after": "1", "count": 1}))
        .await;
    let policy = RetryPolicy::default().with_initial_backoff(Duration::from_millis(10));
    let start = Instant::now();
    let result = sender.send_with_retries(&message, &policy).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(result.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn retry_after_as_http_date_is_waited_for() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/gcm/send");
    // Whole seconds only in an HTTP-date: take the next second boundary + 2 s, so the date
    // is at least 2 s ahead of now.
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = UNIX_EPOCH + Duration::from_secs(now_secs + 3);
    let header = RetryAfter::Date(at).to_header_value();
    assert!(header.ends_with("GMT"), "{header}");
    emu.fault(json!({"path": "/gcm/send", "status": 503, "retry_after": header, "count": 1}))
        .await;
    let policy = RetryPolicy::default().with_initial_backoff(Duration::from_millis(10));

    let start = Instant::now();
    let result = sender
        .send_with_retries(&JsonMessage::new([token.clone()]), &policy)
        .await
        .unwrap();
    let elapsed = start.elapsed();

    assert_eq!(result.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    assert!(elapsed >= Duration::from_secs(2), "waited only {elapsed:?}");
    assert!(SystemTime::now() >= at, "retried before the date");
    emu.shutdown().await;
}

#[tokio::test]
async fn json_and_plain_text_reach_the_same_device() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/gcm/send");

    let plain = sender
        .send_plain(
            &PlainTextMessage::new(token.clone())
                .data("kind", "plain")
                .collapse_key("c1"),
        )
        .await
        .unwrap();
    assert_eq!(plain.outcomes().len(), 1);
    assert_eq!(plain.outcomes()[0].0, token);
    let plain_id = plain.outcomes()[0].1.message_id().unwrap().to_string();
    assert!(
        plain.multicast_ids().is_empty(),
        "plain text has no multicast id"
    );

    let json_result = sender
        .send(&JsonMessage::new([token.clone()]).data("kind", "json"))
        .await
        .unwrap();
    let json_id = json_result.outcomes()[0]
        .1
        .message_id()
        .unwrap()
        .to_string();

    let inbox = emu.inbox(&token).await;
    let seen: Vec<(&str, &str, &str)> = inbox
        .iter()
        .map(|m| {
            (
                m["via"].as_str().unwrap_or(""),
                m["data"]["kind"].as_str().unwrap_or(""),
                m["message_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("legacy-plain", "plain", plain_id.as_str()),
            ("legacy-json", "json", json_id.as_str())
        ]
    );
    assert_eq!(inbox[0]["collapse_key"], "c1");
    emu.shutdown().await;
}

#[tokio::test]
async fn plain_text_canonical_not_registered_and_retry() {
    let emu = Emu::start().await;
    let tokens = emu.devices(3).await;
    let sender = emu.legacy("/fcm/send");

    let new = emu.rotate(&tokens[0]).await;
    let r = sender
        .send_plain(&PlainTextMessage::new(tokens[0].clone()).data("k", "v"))
        .await
        .unwrap();
    assert_eq!(
        r.canonical(),
        HashMap::from([(tokens[0].as_str(), new.as_str())])
    );

    emu.uninstall(&tokens[1]).await;
    let r = sender
        .send_plain(&PlainTextMessage::new(tokens[1].clone()))
        .await
        .unwrap();
    assert_eq!(r.not_registered(), [tokens[1].as_str()]);

    let bad = truncated(&tokens[2]);
    let r = sender
        .send_plain(&PlainTextMessage::new(bad.clone()))
        .await
        .unwrap();
    assert_eq!(
        r.failed(),
        HashMap::from([(bad.as_str(), ErrorCode::InvalidRegistration)])
    );

    // Plain text has no Error=Unavailable: a 5xx instead, retried whole.
    emu.fault(json!({"path": "/fcm/send", "status": 503, "count": 2}))
        .await;
    let r = sender
        .send_plain_with_retries(
            &PlainTextMessage::new(tokens[2].clone()).data("k", "retried"),
            &fast_policy(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    let inbox = emu.inbox(&tokens[2]).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["via"], "legacy-plain");
    assert_eq!(inbox[0]["data"]["k"], "retried");
    emu.shutdown().await;
}

#[tokio::test]
async fn reserved_keys_are_rejected_before_sending() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/gcm/send");

    let err = sender
        .send(&JsonMessage::new([token.clone()]).data("from", "me"))
        .await
        .unwrap_err();
    match &err {
        LegacyError::Invalid(e) => assert_eq!(e.field, "data.from"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(err.to_string().contains("data.from"), "{err}");
    let err = sender
        .send_plain(&PlainTextMessage::new(token.clone()).data("from", "me"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LegacyError::Invalid(e) if e.field == "data.from"),
        "{err:?}"
    );
    let err = sender
        .send_with_retries(
            &JsonMessage::new([token.clone()]).data("google.sent_time", "1"),
            &fast_policy(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LegacyError::Invalid(e) if e.field == "data.google.sent_time"),
        "{err:?}"
    );
    assert_eq!(emu.device_info(&token).await["received"], 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn payload_limit_is_exactly_4096_bytes() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let sender = emu.legacy("/gcm/send");
    // Key "k" (1 byte) + value: keys plus values count (docs/protocols.md,
    // "Legacy HTTP: request fields").
    let fits = "x".repeat(4095);
    let over = "x".repeat(4096);

    let result = sender
        .send(&JsonMessage::new([token.clone()]).data("k", fits.clone()))
        .await
        .unwrap();
    assert_eq!(result.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    let inbox = emu.inbox(&token).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["data"]["k"], Value::String(fits.clone()));

    let err = sender
        .send(&JsonMessage::new([token.clone()]).data("k", over.clone()))
        .await
        .unwrap_err();
    match &err {
        LegacyError::Invalid(e) => {
            assert_eq!(e.field, "data");
            assert!(e.problem.contains("4096"), "{e}");
            assert!(e.problem.contains("4097"), "{e}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }

    let plain = sender
        .send_plain(&PlainTextMessage::new(token.clone()).data("k", fits))
        .await
        .unwrap();
    assert_eq!(plain.outcomes()[0].1.kind(), OutcomeKind::Delivered);
    let err = sender
        .send_plain(&PlainTextMessage::new(token.clone()).data("k", over))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LegacyError::Invalid(e) if e.field == "data" && e.problem.contains("4096")),
        "{err:?}"
    );
    assert_eq!(emu.inbox(&token).await.len(), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn http2_prior_knowledge_works_against_the_emulator() {
    let emu = Emu::start().await;
    let tokens = emu.devices(2).await;
    let sender = pushgate_client::legacy::LegacySender::new(
        pushgate_emulator::DEFAULT_API_KEY,
        HttpConfig::new()
            .with_endpoint(emu.url("/fcm/send"))
            .with_http2_prior_knowledge(true),
    )
    .unwrap();
    let result = sender
        .send(&JsonMessage::new(tokens.clone()).data("k", "h2c"))
        .await
        .unwrap();
    assert_eq!(result.success().len(), 2);
    assert_eq!(emu.inbox(&tokens[1]).await[0]["data"]["k"], "h2c");
    emu.shutdown().await;
}

#[tokio::test]
async fn unreachable_endpoint_is_a_retriable_transport_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sender = pushgate_client::legacy::LegacySender::new(
        "k",
        HttpConfig::new().with_endpoint(format!("http://127.0.0.1:{port}/gcm/send")),
    )
    .unwrap();
    let err = sender
        .send_with_retries(
            &JsonMessage::new(["t"]),
            &fast_policy().with_max_attempts(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LegacyError::Transport(_)), "{err:?}");
    assert!(err.is_retriable());
}

#[tokio::test]
async fn topic_and_condition_sends_expose_the_numeric_message_id() {
    let emu = Emu::start().await;
    let sender = emu.legacy("/fcm/send");

    let result = sender
        .send(&JsonMessage::to_topic("news").data("k", "v"))
        .await
        .unwrap();
    assert!(result.topic_message_id().is_some(), "{result:?}");
    assert!(result.topic_error().is_none());
    assert!(result.outcomes().is_empty() && !result.needs_retry());
    assert_eq!(
        result.topic_outcome().map(|o| o.kind()),
        Some(OutcomeKind::Delivered)
    );

    let result = sender
        .send(&JsonMessage::to_condition(
            "'news' in topics || 'sport' in topics",
        ))
        .await
        .unwrap();
    assert!(result.topic_message_id().is_some(), "{result:?}");

    // Topic data limit is 2048 bytes (docs/protocols.md, "Legacy HTTP: request fields"), checked
    // client-side.
    let err = sender
        .send(&JsonMessage::to_topic("news").data("k", "x".repeat(2048)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LegacyError::Invalid(e) if e.field == "data" && e.problem.contains("2048")),
        "{err:?}"
    );

    // A throttled topic send is retried whole.
    emu.fault(json!({"token": "/topics/news", "error": "TopicsMessageRateExceeded", "count": 1}))
        .await;
    let first = sender.send(&JsonMessage::to_topic("news")).await.unwrap();
    assert_eq!(
        first.topic_error(),
        Some(ErrorCode::TopicsMessageRateExceeded)
    );
    assert_eq!(first.retry(), Some(JsonMessage::to_topic("news")));
    emu.fault(json!({"token": "/topics/news", "error": "TopicsMessageRateExceeded", "count": 1}))
        .await;
    let retried = sender
        .send_with_retries(&JsonMessage::to_topic("news"), &fast_policy())
        .await
        .unwrap();
    assert!(retried.topic_message_id().is_some(), "{retried:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_server_concerns_the_whole_channel() {
    // Nothing listens on port 9 of loopback.
    let sender = LegacySender::new(
        "key",
        HttpConfig::new().with_endpoint("http://127.0.0.1:9/gcm/send"),
    )
    .unwrap();
    let message = JsonMessage::new(["t1".to_string()]).data("k", "v");
    let err = sender.send(&message).await.unwrap_err();
    assert!(matches!(err, LegacyError::Transport(_)), "{err:?}");
    assert_eq!(err.outcome().kind(), OutcomeKind::RetryLater);
    assert_eq!(err.outcome().scope(), Some(FailureScope::Channel));
    let plain = PlainTextMessage::new("t1").data("k", "v");
    let err = sender.send_plain(&plain).await.unwrap_err();
    assert_eq!(err.outcome().scope(), Some(FailureScope::Channel));
}
