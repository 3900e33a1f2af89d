//! Provider-side identifiers: message ids, multicast ids, topic message ids.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Message id returned for every recipient of a `dry_run` request.
pub(crate) const FAKE_MESSAGE_ID: &str = "fake_message_id";

/// Makes ids that look like Google's and never repeat within one emulator instance.
#[derive(Debug)]
pub(crate) struct IdGenerator {
    salt: u64,
    counter: AtomicU64,
}

impl IdGenerator {
    /// A generator with a random salt, so two instances do not produce the same ids.
    pub(crate) fn new() -> Self {
        Self {
            salt: rand::random(),
            counter: AtomicU64::new(0),
        }
    }

    /// A legacy message id, `0:<epoch micros>%<16 hex>`; the hex part is a bijection of a
    /// counter, hence unique.
    pub(crate) fn message_id(&self, micros: u64) -> MessageId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        MessageId {
            micros,
            unique: mix(self.salt.wrapping_add(n)),
        }
    }

    /// A `multicast_id` or numeric topic `message_id`: a positive i64 in [2^62, 2^63), well
    /// beyond 2^53 like the real ones, so a client that reads them as floats is caught.
    pub(crate) fn large_id(&self) -> i64 {
        let r: u64 = rand::random();
        ((r >> 2) | (1 << 62)) as i64
    }
}

/// A legacy message id kept as two numbers (16 bytes, no heap) and rendered on demand:
/// inboxes hold millions of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MessageId {
    micros: u64,
    unique: u64,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0:{}%{:016x}", self.micros, self.unique)
    }
}

/// The splitmix64 finaliser: a bijection on u64 that scatters consecutive inputs.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn message_ids_have_the_real_form_and_are_unique() {
        let ids = IdGenerator::new();
        let all: HashSet<String> = (0..10_000)
            .map(|_| ids.message_id(42).to_string())
            .collect();
        assert_eq!(all.len(), 10_000);
        let one = ids.message_id(1_505_854_204_683_779).to_string();
        let (head, hex) = one.split_once('%').unwrap();
        assert_eq!(head, "0:1505854204683779");
        assert_eq!(hex.len(), 16);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn large_ids_exceed_two_to_the_53() {
        let ids = IdGenerator::new();
        for _ in 0..1000 {
            assert!(ids.large_id() > (1i64 << 53));
        }
    }
}
