//! The answer to a legacy send, in gcm-client's `Result` shape over the shared [`Outcome`].

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use pushgate_proto::legacy::{ErrorCode, GroupResponse, ResponseError, TopicResponse};
use pushgate_proto::{Outcome, RetryAfter};

use super::message::{JsonMessage, LegacyMessage};
use crate::RetryPolicy;

/// What the service answered, by kind of target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// One outcome per token of the result's message, in request order (the tokens are
    /// the message's: not copied here).
    Tokens(Vec<Outcome>),
    /// Topic or condition: a numeric message id or an error.
    Topic(TopicResponse),
    /// Device group: counts and the members that failed.
    Group(GroupResponse),
}

/// The answer to a [`JsonMessage`] or [`PlainTextMessage`](super::PlainTextMessage) send.
///
/// Works like gcm-client's `Result`: [`success`](Self::success),
/// [`canonical`](Self::canonical), [`not_registered`](Self::not_registered),
/// [`failed`](Self::failed), and [`retry`](Self::retry) giving back a message of the same
/// kind for only the tokens worth retrying, with [`delay`](Self::delay) saying how long to
/// wait first. [`outcomes`](Self::outcomes) is the same answer in the shared vocabulary.
#[derive(Debug, Clone)]
pub struct LegacyResult<M: LegacyMessage = JsonMessage> {
    message: M,
    answer: Answer,
    multicast_ids: Vec<i64>,
    retry_after: Option<RetryAfter>,
    policy: RetryPolicy,
    /// [`outcomes`](Self::outcomes), made on first use: the tokens paired with their
    /// outcomes cost a copy of every token, which senders that know their tokens skip.
    pairs: OnceLock<Vec<(String, Outcome)>>,
}

impl<M: LegacyMessage> LegacyResult<M> {
    /// Assembles a result; `message` is the message this answer is for.
    pub(crate) fn new(
        message: M,
        answer: Answer,
        multicast_ids: Vec<i64>,
        retry_after: Option<RetryAfter>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            message,
            answer,
            multicast_ids,
            retry_after,
            policy,
            pairs: OnceLock::new(),
        }
    }

    /// Replaces the policy [`delay`](Self::delay) uses.
    pub(crate) fn set_policy(&mut self, policy: RetryPolicy) {
        self.policy = policy;
    }

    /// The message this result answers (the original one, after merging retries).
    pub fn message(&self) -> &M {
        &self.message
    }

    /// One `(token, outcome)` per requested token, in request order. Empty for topic,
    /// condition and device-group sends. Made (copying the tokens) on the first call;
    /// [`outcome_list`](Self::outcome_list) is the same without the tokens.
    pub fn outcomes(&self) -> &[(String, Outcome)] {
        self.pairs.get_or_init(|| {
            self.pairs()
                .map(|(t, o)| (t.to_string(), o.clone()))
                .collect()
        })
    }

    /// The per-token outcomes, owned.
    pub fn into_outcomes(self) -> Vec<(String, Outcome)> {
        let tokens = self.message.tokens();
        match self.answer {
            Answer::Tokens(outcomes) => tokens.iter().cloned().zip(outcomes).collect(),
            _ => Vec::new(),
        }
    }

    /// One outcome per requested token, in the order of the message's tokens
    /// ([`JsonMessage::registration_ids`]), without the tokens: what a sender that keeps
    /// its own token list reads, at no copy.
    pub fn outcome_list(&self) -> &[Outcome] {
        match &self.answer {
            Answer::Tokens(outcomes) => outcomes,
            _ => &[],
        }
    }

    /// [`outcome_list`](Self::outcome_list), owned.
    pub fn into_outcome_list(self) -> Vec<Outcome> {
        match self.answer {
            Answer::Tokens(outcomes) => outcomes,
            _ => Vec::new(),
        }
    }

    /// Each token of the message with its outcome, borrowed.
    fn pairs(&self) -> impl Iterator<Item = (&str, &Outcome)> {
        self.message
            .tokens()
            .iter()
            .map(String::as_str)
            .zip(self.outcome_list())
    }

    /// Token → provider message id, for every token the service accepted.
    pub fn success(&self) -> HashMap<&str, &str> {
        self.pairs()
            .filter_map(|(t, o)| o.message_id().map(|id| (t, id)))
            .collect()
    }

    /// Old token → canonical token: store the new one (docs/protocols.md,
    /// "Legacy HTTP: canonical ids").
    pub fn canonical(&self) -> HashMap<&str, &str> {
        self.pairs()
            .filter_map(|(t, o)| match o {
                Outcome::Rotated { new_token, .. } => Some((t, new_token.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Tokens the service no longer knows (`NotRegistered`): delete them.
    pub fn not_registered(&self) -> Vec<&str> {
        self.pairs()
            .filter(|(_, o)| o.reason() == Some(ErrorCode::NotRegistered.as_str()))
            .map(|(t, _)| t)
            .collect()
    }

    /// Token → error code for every other failure that retrying will not fix.
    pub fn failed(&self) -> HashMap<&str, ErrorCode> {
        self.pairs()
            .filter(|(_, o)| !o.is_success() && !o.is_retriable())
            .filter_map(|(t, o)| {
                let code = ErrorCode::parse(o.reason()?);
                (code != ErrorCode::NotRegistered).then_some((t, code))
            })
            .collect()
    }

    /// True when [`retry`](Self::retry) has something to send.
    pub fn needs_retry(&self) -> bool {
        match &self.answer {
            Answer::Tokens(outcomes) => outcomes.iter().any(Outcome::is_retriable),
            Answer::Topic(topic) => topic_error_is_retriable(topic),
            Answer::Group(_) => false,
        }
    }

    /// The same message (data, options) for only the tokens whose outcome is retriable
    /// (`Unavailable`, `InternalServerError`, the rate-exceeded codes, a failed chunk), in
    /// request order; for a topic or condition, the whole message when its error is
    /// retriable. `None` when nothing needs retrying.
    pub fn retry(&self) -> Option<M> {
        match &self.answer {
            Answer::Tokens(_) => {
                let tokens: Vec<String> = self
                    .pairs()
                    .filter(|(_, o)| o.is_retriable())
                    .map(|(t, _)| t.to_string())
                    .collect();
                (!tokens.is_empty()).then(|| self.message.with_tokens(tokens))
            }
            Answer::Topic(topic) => topic_error_is_retriable(topic).then(|| self.message.clone()),
            Answer::Group(_) => None,
        }
    }

    /// The server's `Retry-After` from the latest answer, as it was sent.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.retry_after
    }

    /// How long to wait before retry number `attempt` (0 = the first retry): the policy's
    /// backoff with jitter, never below the server's `Retry-After` (either form).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(&self.policy, attempt)
    }

    /// [`delay`](Self::delay) with another policy.
    pub fn delay_with(&self, policy: &RetryPolicy, attempt: u32) -> Duration {
        policy.delay(attempt, self.server_delay())
    }

    /// The longest wait the server asked for, counted from now.
    pub(crate) fn server_delay(&self) -> Option<Duration> {
        let header = self.retry_after.map(|r| r.delay_from(SystemTime::now()));
        let per_token = self
            .outcome_list()
            .iter()
            .filter_map(Outcome::retry_after)
            .max();
        header.max(per_token)
    }

    /// `multicast_id` of every answer merged into this result: the chunks of the first
    /// round in order, then those of each retry round.
    pub fn multicast_ids(&self) -> &[i64] {
        &self.multicast_ids
    }

    /// Topic or condition send: the numeric message id on success.
    pub fn topic_message_id(&self) -> Option<i64> {
        match &self.answer {
            Answer::Topic(topic) => topic.message_id,
            _ => None,
        }
    }

    /// Topic or condition send: the error code on failure (e.g. `TopicsMessageRateExceeded`).
    pub fn topic_error(&self) -> Option<ErrorCode> {
        match &self.answer {
            Answer::Topic(topic) => topic.error.as_deref().map(ErrorCode::parse),
            _ => None,
        }
    }

    /// Topic or condition send: the answer in the shared vocabulary.
    pub fn topic_outcome(&self) -> Option<Outcome> {
        let Answer::Topic(topic) = &self.answer else {
            return None;
        };
        if let Some(error) = &topic.error {
            return Some(ErrorCode::parse(error).outcome(self.server_delay()));
        }
        topic.message_id.map(|id| Outcome::Delivered {
            message_id: id.to_string(),
        })
    }

    /// Device-group send: the `success` / `failure` counts and `failed_registration_ids`.
    pub fn group(&self) -> Option<&GroupResponse> {
        match &self.answer {
            Answer::Group(group) => Some(group),
            _ => None,
        }
    }

    /// Device-group send: the members the message did not reach.
    pub fn failed_registration_ids(&self) -> &[String] {
        match &self.answer {
            Answer::Group(group) => &group.failed_registration_ids,
            _ => &[],
        }
    }

    /// Folds the answer to [`retry`](Self::retry)'s message into this result: each retried
    /// token's new outcome goes back to its original position, everything else (successes,
    /// canonical ids, dead tokens of earlier rounds) stays.
    pub fn merge(&mut self, retried: LegacyResult<M>) -> Result<(), ResponseError> {
        let tokens = self.message.tokens();
        let retried_tokens = retried.message.tokens();
        match (&mut self.answer, retried.answer) {
            (Answer::Tokens(outcomes), Answer::Tokens(new)) => {
                let positions: Vec<usize> = outcomes
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.is_retriable())
                    .map(|(i, _)| i)
                    .collect();
                if positions.len() != new.len() || new.len() != retried_tokens.len() {
                    return Err(ResponseError(format!(
                        "the retry answered {} tokens, but {} were waiting for a retry",
                        new.len(),
                        positions.len()
                    )));
                }
                if let Some((i, token)) = positions
                    .iter()
                    .zip(retried_tokens)
                    .find(|(i, token)| tokens[**i] != **token)
                {
                    return Err(ResponseError(format!(
                        "the retry answered token {} where {} was expected",
                        pushgate_proto::token::short_token(token),
                        pushgate_proto::token::short_token(&tokens[*i])
                    )));
                }
                for (i, outcome) in positions.into_iter().zip(new) {
                    outcomes[i] = outcome;
                }
            }
            (Answer::Topic(topic), Answer::Topic(new)) => *topic = new,
            (Answer::Group(group), Answer::Group(new)) => *group = new,
            _ => {
                return Err(ResponseError(
                    "the retry was answered in a different shape than the original".into(),
                ));
            }
        }
        self.multicast_ids.extend(retried.multicast_ids);
        self.retry_after = retried.retry_after;
        self.pairs = OnceLock::new();
        Ok(())
    }
}

fn topic_error_is_retriable(topic: &TopicResponse) -> bool {
    topic
        .error
        .as_deref()
        .is_some_and(|e| ErrorCode::parse(e).is_retriable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::PlainTextMessage;
    use proptest::prelude::*;

    fn delivered(id: &str) -> Outcome {
        Outcome::Delivered {
            message_id: id.into(),
        }
    }

    fn code(c: &str) -> Outcome {
        ErrorCode::parse(c).outcome(None)
    }

    /// The answer `outcomes` to `message`, with nothing else (no multicast id, no
    /// `Retry-After`).
    fn answer_to(message: JsonMessage, outcomes: Vec<Outcome>) -> LegacyResult {
        LegacyResult::new(
            message,
            Answer::Tokens(outcomes),
            Vec::new(),
            None,
            RetryPolicy::default(),
        )
    }

    fn json_result(outcomes: Vec<(&str, Outcome)>) -> LegacyResult {
        let tokens: Vec<String> = outcomes.iter().map(|(t, _)| t.to_string()).collect();
        LegacyResult::new(
            JsonMessage::new(tokens).data("k", "v").collapse_key("ck"),
            Answer::Tokens(outcomes.into_iter().map(|(_, o)| o).collect()),
            vec![216],
            None,
            RetryPolicy::default(),
        )
    }

    /// The multicast example of docs/protocols.md, "Legacy HTTP: token responses", tokens named
    /// t0..t5.
    fn doc_example() -> LegacyResult {
        json_result(vec![
            ("t0", delivered("1:0408")),
            ("t1", code("Unavailable")),
            ("t2", code("InvalidRegistration")),
            ("t3", delivered("1:1516")),
            (
                "t4",
                Outcome::Rotated {
                    message_id: "1:2342".into(),
                    new_token: "32".into(),
                },
            ),
            ("t5", code("NotRegistered")),
        ])
    }

    #[test]
    fn gcm_client_views_of_the_documented_example() {
        let r = doc_example();
        assert_eq!(
            r.success(),
            HashMap::from([("t0", "1:0408"), ("t3", "1:1516"), ("t4", "1:2342")])
        );
        assert_eq!(r.canonical(), HashMap::from([("t4", "32")]));
        assert_eq!(r.not_registered(), ["t5"]);
        assert_eq!(
            r.failed(),
            HashMap::from([("t2", ErrorCode::InvalidRegistration)])
        );
        assert!(r.needs_retry());
        let retry = r.retry().unwrap();
        assert_eq!(retry.registration_ids(), Some(&["t1".to_string()][..]));
        assert_eq!(retry.data_payload(), r.message().data_payload());
        assert_eq!(retry.options().collapse_key.as_deref(), Some("ck"));
        assert_eq!(r.multicast_ids(), [216]);
    }

    #[test]
    fn every_retriable_code_is_retried_and_nothing_else() {
        let r = json_result(vec![
            ("a", code("Unavailable")),
            ("b", code("InternalServerError")),
            ("c", code("DeviceMessageRateExceeded")),
            ("d", code("MismatchSenderId")),
            ("e", code("InvalidPackageName")),
            ("f", code("SomethingNew")),
            ("g", delivered("x")),
        ]);
        let retry = r.retry().unwrap();
        assert_eq!(
            retry.registration_ids().unwrap(),
            ["a".to_string(), "b".into(), "c".into()]
        );
        let failed = r.failed();
        assert_eq!(failed.len(), 3);
        assert_eq!(failed["f"], ErrorCode::Other("SomethingNew".into()));
    }

    #[test]
    fn merge_refuses_an_answer_for_other_tokens() {
        let mut r = json_result(vec![
            ("a", code("Unavailable")),
            ("b", delivered("1")),
            ("c", code("Unavailable")),
        ]);
        let wrong = answer_to(
            JsonMessage::new(["a", "b"]),
            vec![delivered("2"), delivered("3")],
        );
        let error = r.merge(wrong).unwrap_err().to_string();
        assert!(
            error.contains("token b where c was expected"),
            "names the tokens: {error}"
        );
        assert!(r.needs_retry(), "nothing merged");
        let fewer = answer_to(JsonMessage::new(["a"]), vec![delivered("2")]);
        assert!(r.merge(fewer).is_err());
        let kinds: Vec<_> = r.outcomes().iter().map(|(_, o)| o.kind()).collect();
        assert_eq!(
            kinds,
            [
                code("Unavailable").kind(),
                delivered("1").kind(),
                code("Unavailable").kind()
            ]
        );
    }

    #[test]
    fn merge_puts_outcomes_back_in_place() {
        let mut r = json_result(vec![
            ("a", code("Unavailable")),
            ("b", delivered("1")),
            ("c", code("InternalServerError")),
            ("d", code("NotRegistered")),
            ("e", code("Unavailable")),
        ]);
        // Read before the merge too: the pairs made then must not outlive it.
        assert_eq!(r.outcomes()[0].1.message_id(), None);
        let round2 = LegacyResult::new(
            r.retry().unwrap(),
            Answer::Tokens(vec![
                delivered("2"),
                code("Unavailable"),
                Outcome::Rotated {
                    message_id: "3".into(),
                    new_token: "E".into(),
                },
            ]),
            vec![217],
            Some(RetryAfter::Seconds(9)),
            RetryPolicy::default(),
        );
        r.merge(round2).unwrap();
        let ids: Vec<Option<&str>> = r.outcomes().iter().map(|(_, o)| o.message_id()).collect();
        assert_eq!(ids, [Some("2"), Some("1"), None, None, Some("3")]);
        let tokens: Vec<&str> = r.outcomes().iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tokens, ["a", "b", "c", "d", "e"]);
        assert_eq!(r.canonical(), HashMap::from([("e", "E")]));
        assert_eq!(r.not_registered(), ["d"]);
        assert_eq!(r.retry().unwrap().registration_ids().unwrap(), ["c"]);
        assert_eq!(r.multicast_ids(), [216, 217]);
        assert_eq!(r.retry_after(), Some(RetryAfter::Seconds(9)));
        // The original message is kept whole.
        assert_eq!(r.message().registration_ids().unwrap().len(), 5);
    }

    #[test]
    fn merge_refuses_mismatched_answers() {
        let mut r = json_result(vec![("a", code("Unavailable")), ("b", delivered("1"))]);
        let wrong_len = json_result(vec![("a", delivered("2")), ("b", delivered("3"))]);
        assert!(r.merge(wrong_len).is_err());
        let wrong_token = json_result(vec![("z", delivered("2"))]);
        assert!(r.merge(wrong_token).is_err());
        assert_eq!(
            r.outcomes()[0].1.kind(),
            pushgate_proto::OutcomeKind::RetryLater
        );
    }

    #[test]
    fn delay_never_undercuts_retry_after_in_either_form() {
        let policy = RetryPolicy::default().with_initial_backoff(Duration::from_millis(10));
        let mut r = doc_example();
        r.policy = policy.clone();
        r.retry_after = Some(RetryAfter::Seconds(3));
        for attempt in 0..4 {
            assert!(r.delay(attempt) >= Duration::from_secs(3));
        }
        r.retry_after = Some(RetryAfter::Date(
            SystemTime::now() + Duration::from_secs(60),
        ));
        let d = r.delay(0);
        assert!(
            d > Duration::from_secs(58) && d <= Duration::from_secs(60),
            "{d:?}"
        );
        r.retry_after = None;
        assert!(r.delay(0) < Duration::from_millis(20));
        // A per-token wait (from a failed chunk's Retry-After) counts too.
        let r = json_result(vec![(
            "a",
            ErrorCode::Unavailable.outcome(Some(Duration::from_secs(2))),
        )]);
        assert!(r.delay_with(&policy, 0) >= Duration::from_secs(2));
    }

    #[test]
    fn plain_text_result_retries_as_plain_text() {
        let r: LegacyResult<PlainTextMessage> = LegacyResult::new(
            PlainTextMessage::new("tok").data("k", "v"),
            Answer::Tokens(vec![code("DeviceMessageRateExceeded")]),
            Vec::new(),
            None,
            RetryPolicy::default(),
        );
        let retry: PlainTextMessage = r.retry().unwrap();
        assert_eq!(retry.registration_id(), "tok");
        assert_eq!(retry.request().data["k"], "v");
    }

    #[test]
    fn topic_and_group_answers() {
        let topic = LegacyResult::new(
            JsonMessage::to_topic("news"),
            Answer::Topic(TopicResponse {
                message_id: Some(6_177_433_633_397_011_933),
                error: None,
            }),
            Vec::new(),
            None,
            RetryPolicy::default(),
        );
        assert_eq!(topic.topic_message_id(), Some(6_177_433_633_397_011_933));
        assert!(!topic.needs_retry() && topic.outcomes().is_empty());
        assert_eq!(
            topic.topic_outcome(),
            Some(delivered("6177433633397011933"))
        );
        let throttled = LegacyResult::new(
            JsonMessage::to_topic("news"),
            Answer::Topic(TopicResponse {
                message_id: None,
                error: Some("TopicsMessageRateExceeded".into()),
            }),
            Vec::new(),
            None,
            RetryPolicy::default(),
        );
        assert_eq!(
            throttled.topic_error(),
            Some(ErrorCode::TopicsMessageRateExceeded)
        );
        assert_eq!(throttled.retry(), Some(JsonMessage::to_topic("news")));
        let group = LegacyResult::new(
            JsonMessage::to_notification_key("key"),
            Answer::Group(GroupResponse {
                success: 1,
                failure: 2,
                failed_registration_ids: vec!["r1".into(), "r2".into()],
            }),
            Vec::new(),
            None,
            RetryPolicy::default(),
        );
        assert_eq!(group.failed_registration_ids(), ["r1", "r2"]);
        assert_eq!(group.group().map(|g| g.success), Some(1));
        assert!(group.retry().is_none());
    }

    fn arb_outcome() -> impl Strategy<Value = Outcome> {
        let codes: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .chain(["Weird".to_string()])
            .collect();
        prop_oneof![
            "[0-9:]{1,8}".prop_map(|id| Outcome::Delivered { message_id: id }),
            ("[0-9:]{1,8}", "[a-z]{1,8}").prop_map(|(id, t)| Outcome::Rotated {
                message_id: id,
                new_token: t
            }),
            proptest::sample::select(codes).prop_map(|c| ErrorCode::parse(&c).outcome(None)),
        ]
    }

    proptest! {
        /// `retry()` holds exactly the ids whose outcome is retriable, in request order, and
        /// merging an all-delivered answer to it leaves nothing to retry and nothing moved.
        #[test]
        fn retry_holds_exactly_the_retriable_ids(
            outcomes in proptest::collection::vec(arb_outcome(), 0..60)
        ) {
            let tokens: Vec<String> = (0..outcomes.len()).map(|i| format!("tok{i}")).collect();
            let retriable = [
                "Unavailable", "InternalServerError", "QuotaExceeded",
                "DeviceMessageRateExceeded", "TopicsMessageRateExceeded", "DeviceQuotaExceeded",
            ];
            let expected: Vec<String> = tokens
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| o.reason().is_some_and(|r| retriable.contains(&r)))
                .map(|(t, _)| t.clone())
                .collect();
            let mut r = answer_to(JsonMessage::new(tokens.clone()).data("k", "v"), outcomes.clone());
            let retry = r.retry();
            prop_assert_eq!(retry.is_some(), !expected.is_empty());
            prop_assert_eq!(r.needs_retry(), !expected.is_empty());
            let Some(retry) = retry else { return Ok(()) };
            prop_assert_eq!(retry.registration_ids().unwrap(), &expected[..]);
            prop_assert_eq!(retry.data_payload(), r.message().data_payload());

            let answer = expected.iter().map(|t| delivered(&format!("new-{t}"))).collect();
            r.merge(answer_to(retry, answer)).unwrap();
            prop_assert!(!r.needs_retry());
            for (i, ((token, merged), original)) in r.outcomes().iter().zip(&outcomes).enumerate() {
                prop_assert_eq!(token, &tokens[i]);
                if expected.contains(token) {
                    let want = format!("new-{token}");
                    prop_assert_eq!(merged.message_id(), Some(want.as_str()));
                } else {
                    prop_assert_eq!(merged, original);
                }
            }
        }
    }
}
