//! What a batch of provider answers means for the queue and for the channel: when each
//! retriable delivery is due again, and how long the whole channel must hold off.
//! Pure functions of the answers and the clock, so the rules are tested on their own.

use std::time::Duration;

use pushgate_client::RetryPolicy;
use pushgate_proto::{FailureScope, Outcome};
use pushgate_store::{Completion, Delivery};
use time::OffsetDateTime;

use crate::config::DeliverySettings;

/// How long the channel pauses after refused credentials (when they are retried).
pub const AUTH_PAUSE: Duration = Duration::from_secs(30);

/// The queue's backoff, from the delivery settings.
pub fn retry_policy(settings: &DeliverySettings) -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(settings.retry_initial)
        .with_max_backoff(settings.retry_max)
}

/// What one batch decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// One completion per delivery, in order.
    pub completions: Vec<Completion>,
    /// The channel sends nothing before this (the provider's Retry-After, refused
    /// credentials, or a provider that answered nothing).
    pub pause_until: Option<OffsetDateTime>,
    /// Every answer was a whole-channel failure (provider unreachable, credentials refused).
    pub channel_failed: bool,
}

/// True when an answer says nothing can be sent on the channel right now: the provider
/// could not be reached or the credentials were refused, by the answer's own scope. A
/// channel-wide quota (`Throttled`) is pacing, not a failure: its `Retry-After` already
/// pauses the channel.
fn fails_the_channel(outcome: &Outcome) -> bool {
    outcome.scope() == Some(FailureScope::Channel) && !matches!(outcome, Outcome::Throttled { .. })
}

/// `now + d`, saturating.
pub fn after(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    now + time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Turns the answers for `deliveries` (same order) into completions and a channel pause.
///
/// * Retriable answers wait `policy.delay(attempt)`, never less than the provider's
///   `Retry-After`; a `Retry-After` also pauses the whole channel until then, so no request
///   goes out before the time the provider gave.
/// * With `retry_auth_failures`, refused credentials are retried too (the operator may be
///   fixing the key) and pause the channel for [`AUTH_PAUSE`].
/// * `consecutive_failures` counts earlier batches in a row that failed as a whole; a batch
///   failing as a whole pauses the channel with the same backoff, so a provider that is down
///   is not hammered.
pub fn decide(
    deliveries: &[Delivery],
    outcomes: Vec<Outcome>,
    now: OffsetDateTime,
    settings: &DeliverySettings,
    consecutive_failures: u32,
) -> Decision {
    let policy = retry_policy(settings);
    let mut pause_until: Option<OffsetDateTime> = None;
    let mut pause = |until: OffsetDateTime| {
        pause_until = Some(pause_until.map_or(until, |p| p.max(until)));
    };
    let mut whole_channel = 0usize;
    let mut completions = Vec::with_capacity(deliveries.len());
    for (d, outcome) in deliveries.iter().zip(outcomes) {
        let outcome = match outcome {
            Outcome::AuthFailed { reason } if settings.retry_auth_failures => {
                pause(after(now, AUTH_PAUSE));
                Outcome::RetryLater {
                    reason: format!("AuthFailed: {reason}"),
                    after: Some(AUTH_PAUSE),
                    scope: FailureScope::Channel,
                }
            }
            other => other,
        };
        let retry_at = if outcome.is_retriable() {
            let server = outcome.retry_after();
            if let Some(wait) = server {
                pause(after(now, wait));
            }
            if fails_the_channel(&outcome) {
                whole_channel += 1;
            }
            let attempt = u32::try_from(d.attempts.max(1) - 1).unwrap_or(u32::MAX);
            Some(after(now, policy.delay(attempt, server)))
        } else {
            None
        };
        completions.push(Completion {
            delivery_id: d.id,
            attempt: d.attempts,
            outcome,
            retry_at,
        });
    }
    let channel_failed = !deliveries.is_empty() && whole_channel == deliveries.len();
    if channel_failed {
        pause(after(now, policy.base_delay(consecutive_failures)));
    }
    Decision {
        completions,
        pause_until,
        channel_failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushgate_store::DeliveryState;
    use uuid::Uuid;

    fn delivery(id: i64, attempts: i64) -> Delivery {
        let t = OffsetDateTime::UNIX_EPOCH;
        Delivery {
            id,
            message_id: Uuid::nil(),
            app: "a".into(),
            device_id: None,
            token: format!("t{id}"),
            channel: "c".into(),
            state: DeliveryState::InFlight,
            attempts,
            due_at: t,
            lease_until: None,
            deadline: t,
            provider_message_id: None,
            error_code: None,
            updated_at: t,
        }
    }

    fn settings() -> DeliverySettings {
        DeliverySettings {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            ..DeliverySettings::default()
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_000_000).unwrap()
    }

    #[test]
    fn retry_after_is_a_floor_and_pauses_the_channel() {
        let d = [delivery(1, 1), delivery(2, 1)];
        let outcomes = vec![
            Outcome::RetryLater {
                reason: "Unavailable".into(),
                after: Some(Duration::from_secs(30)),
                scope: FailureScope::Token,
            },
            Outcome::Delivered {
                message_id: "m".into(),
            },
        ];
        let out = decide(&d, outcomes, now(), &settings(), 0);
        let retry_at = out.completions[0].retry_at.unwrap();
        assert!(retry_at >= now() + time::Duration::seconds(30));
        assert_eq!(out.pause_until, Some(now() + time::Duration::seconds(30)));
        assert_eq!(out.completions[1].retry_at, None);
        assert!(!out.channel_failed);
        assert_eq!(out.completions[0].attempt, 1);
    }

    #[test]
    fn backoff_grows_with_attempts_within_the_cap() {
        let at = |attempts: i64| {
            let d = [delivery(1, attempts)];
            let o = vec![Outcome::Throttled {
                reason: "DeviceMessageRateExceeded".into(),
                after: None,
                scope: FailureScope::Token,
            }];
            let c = decide(&d, o, now(), &settings(), 0);
            assert_eq!(c.pause_until, None, "a per-device throttle pauses nothing");
            (c.completions[0].retry_at.unwrap() - now()).as_seconds_f64()
        };
        // Equal jitter: d(n) ± 0.5 s.
        assert!((0.5..1.5).contains(&at(1)), "{}", at(1));
        assert!((3.5..4.5).contains(&at(3)), "{}", at(3));
        assert!(at(30) <= 60.0, "capped at retry_max");
    }

    #[test]
    fn refused_credentials_wait_instead_of_failing_when_asked() {
        let d = [delivery(1, 1)];
        let refused = || {
            vec![Outcome::AuthFailed {
                reason: "HTTP 401".into(),
            }]
        };
        let retried = decide(&d, refused(), now(), &settings(), 0);
        assert!(retried.completions[0].outcome.is_retriable());
        assert!(retried.channel_failed);
        assert!(retried.pause_until.unwrap() >= now() + time::Duration::seconds(30));
        let strict = DeliverySettings {
            retry_auth_failures: false,
            ..settings()
        };
        let failed = decide(&d, refused(), now(), &strict, 0);
        assert!(matches!(
            failed.completions[0].outcome,
            Outcome::AuthFailed { .. }
        ));
        assert_eq!(failed.completions[0].retry_at, None);
        assert!(!failed.channel_failed);
    }

    #[test]
    fn a_provider_that_answers_nothing_pauses_the_channel_longer_each_time() {
        let d = [delivery(1, 1), delivery(2, 1)];
        let down = || vec![retry("no answer", FailureScope::Channel); 2];
        let first = decide(&d, down(), now(), &settings(), 0);
        let third = decide(&d, down(), now(), &settings(), 3);
        assert!(first.channel_failed && third.channel_failed);
        assert_eq!(first.pause_until, Some(now() + time::Duration::seconds(1)));
        assert_eq!(third.pause_until, Some(now() + time::Duration::seconds(8)));
    }

    fn retry(reason: &str, scope: FailureScope) -> Outcome {
        Outcome::RetryLater {
            reason: reason.into(),
            after: None,
            scope,
        }
    }

    #[test]
    fn the_scope_decides_a_whole_channel_failure_not_the_reason_text() {
        let d = [delivery(1, 1), delivery(2, 1)];
        let batch = |o: Outcome| decide(&d, vec![o; 2], now(), &settings(), 0);
        // Reason texts that once meant "the channel is down" now mean nothing by themselves.
        let per_token = batch(retry("transport error", FailureScope::Token));
        assert!(!per_token.channel_failed);
        assert_eq!(per_token.pause_until, None);
        let whole_request = batch(retry("CCS unreachable", FailureScope::Message));
        assert!(!whole_request.channel_failed);
        let unreachable = batch(retry("whatever", FailureScope::Channel));
        assert!(unreachable.channel_failed);
        assert!(unreachable.pause_until.is_some());
    }

    #[test]
    fn a_project_quota_paces_the_channel_without_failing_it() {
        let d = [delivery(1, 1)];
        let quota = vec![Outcome::Throttled {
            reason: "QUOTA_EXCEEDED".into(),
            after: Some(Duration::from_secs(20)),
            scope: FailureScope::Channel,
        }];
        let out = decide(&d, quota, now(), &settings(), 0);
        assert!(!out.channel_failed);
        assert_eq!(out.pause_until, Some(now() + time::Duration::seconds(20)));
    }

    #[test]
    fn one_channel_wide_answer_among_others_does_not_fail_the_channel() {
        let d = [delivery(1, 1), delivery(2, 1)];
        let mixed = vec![
            retry("no answer", FailureScope::Channel),
            Outcome::Delivered {
                message_id: "m".into(),
            },
        ];
        assert!(!decide(&d, mixed, now(), &settings(), 0).channel_failed);
    }
}
