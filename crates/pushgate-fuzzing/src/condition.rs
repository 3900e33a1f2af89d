//! The topic-condition grammar.

use pushgate_proto::condition::{Condition, MAX_CONDITION_TOPICS};

/// `Condition::parse` (UTF-8, lossily): never panics; a parsed condition names at most
/// `MAX_CONDITION_TOPICS` topics, prints (`Display`) to text that parses back to the same
/// tree, and evaluates the same way before and after.
pub fn topic_condition(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = Condition::parse(&text) else {
        return;
    };
    let topics = parsed.topics();
    assert!(
        topics.len() <= MAX_CONDITION_TOPICS,
        "{} topics",
        topics.len()
    );
    let printed = parsed.to_string();
    let again = Condition::parse(&printed).expect("a printed condition parses");
    assert_eq!(again, parsed, "print → parse changed the tree: {printed}");
    // Every subscription set over the named topics evaluates the same on both trees.
    for mask in 0u32..(1 << topics.len()) {
        let subscribed = |t: &str| {
            topics
                .iter()
                .position(|x| *x == t)
                .is_some_and(|i| mask & (1 << i) != 0)
        };
        assert_eq!(again.matches(&subscribed), parsed.matches(&subscribed));
    }
}
