//! A fast reader for the usual multicast answer, byte for byte as FCM (and the emulator)
//! write it; anything else is left to serde.
//!
//! serde_json's derived reader was the largest part of a 1000-id multicast's CPU (about
//! 1,270 instructions per token, against about 270 to write the token into the request).
//! The answers FCM writes have one layout: no whitespace, the fields in the order
//! `multicast_id, success, failure, canonical_ids, results`, each result either
//! `{"message_id":…}`, `{"message_id":…,"registration_id":…}` or `{"error":…}`, and ids
//! and error codes without escapes. This reader accepts exactly that layout and returns
//! what serde would; for any other byte sequence it returns `None` and the caller parses
//! with serde as before (so errors and unusual answers are worded and handled as before).

use pushgate_proto::legacy::{MulticastResponse, RecipientResult};

/// The multicast answer in `body` when it has FCM's usual layout, else `None`.
pub(super) fn read(body: &[u8]) -> Option<MulticastResponse> {
    let mut r = Reader { body, at: 0 };
    r.literal(b"{\"multicast_id\":")?;
    let multicast_id = r.int()?;
    r.literal(b",\"success\":")?;
    let success = r.uint()?;
    r.literal(b",\"failure\":")?;
    let failure = r.uint()?;
    r.literal(b",\"canonical_ids\":")?;
    let canonical_ids = r.uint()?;
    r.literal(b",\"results\":[")?;
    let mut results = Vec::new();
    if !r.eat(b']') {
        loop {
            results.push(r.result()?);
            if r.eat(b']') {
                break;
            }
            r.literal(b",")?;
        }
    }
    r.literal(b"}")?;
    (r.at == body.len()).then_some(MulticastResponse {
        multicast_id,
        success,
        failure,
        canonical_ids,
        results,
    })
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at.checked_add(expected.len())?;
        (self.body.get(self.at..end)? == expected).then(|| self.at = end)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.body.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    /// One result in one of its three usual forms.
    fn result(&mut self) -> Option<RecipientResult> {
        if self.literal(b"{\"error\":").is_some() {
            let error = self.string()?;
            self.literal(b"}")?;
            return Some(RecipientResult {
                message_id: None,
                registration_id: None,
                error: Some(error),
            });
        }
        self.literal(b"{\"message_id\":")?;
        let message_id = self.string()?;
        let registration_id = if self.literal(b",\"registration_id\":").is_some() {
            Some(self.string()?)
        } else {
            None
        };
        self.literal(b"}")?;
        Some(RecipientResult {
            message_id: Some(message_id),
            registration_id,
            error: None,
        })
    }

    /// A string without escapes or control characters (serde would take those too, but
    /// they are left to it).
    fn string(&mut self) -> Option<String> {
        self.literal(b"\"")?;
        let rest = self.body.get(self.at..)?;
        let len = plain_len(rest)?;
        let text = std::str::from_utf8(&rest[..len]).ok()?;
        self.at += len + 1;
        Some(text.to_owned())
    }

    /// Digits of a JSON number without sign, fraction or exponent, and no leading zero.
    fn digits(&mut self) -> Option<&[u8]> {
        let rest = self.body.get(self.at..)?;
        let len = rest.iter().position(|b| !b.is_ascii_digit())?;
        let digits = &rest[..len];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        // A fraction or exponent makes it a float: not this reader's.
        if matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.at += len;
        Some(digits)
    }

    fn uint(&mut self) -> Option<u32> {
        self.digits()?.iter().try_fold(0u32, |n, &d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    }

    fn int(&mut self) -> Option<i64> {
        let negative = self.eat(b'-');
        let digits = self.digits()?;
        // Accumulated negatively so that i64::MIN fits.
        let value = digits.iter().try_fold(0i64, |n, &d| {
            n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))
        })?;
        if negative {
            Some(value)
        } else {
            value.checked_neg()
        }
    }
}

/// The length of the string at the start of `s` (up to its closing quote) when it has no
/// escape (`\\`) or control character, else `None`. Eight bytes at a time: bytes are
/// flagged with the usual "has zero byte" word tricks, exact for the first flagged byte.
fn plain_len(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let flagged = |w: u64| {
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
    };
    let mut at = 0;
    while let Some(chunk) = s.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let mask = flagged(word);
        if mask != 0 {
            at += (mask.trailing_zeros() / 8) as usize;
            return (s[at] == b'"').then_some(at);
        }
        at += 8;
    }
    let tail = s[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (s[at + tail] == b'"').then_some(at + tail)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn serde_read(body: &[u8]) -> Option<MulticastResponse> {
        serde_json::from_slice(body).ok()
    }

    proptest! {
        /// The word-at-a-time scan finds what a byte-at-a-time one finds.
        #[test]
        fn plain_len_is_the_bytewise_scan(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let bytewise = s
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .filter(|&i| s[i] == b'"');
            prop_assert_eq!(plain_len(&s), bytewise);
        }
    }

    #[test]
    fn usual_answers_are_read() {
        let body = br#"{"multicast_id":9007199254740993,"success":2,"failure":1,"canonical_ids":1,"results":[{"message_id":"0:1%ab"},{"message_id":"0:2","registration_id":"new-token"},{"error":"NotRegistered"}]}"#;
        assert_eq!(read(body), serde_read(body));
        assert!(read(body).is_some());
        let empty =
            br#"{"multicast_id":-5,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#;
        assert_eq!(read(empty), serde_read(empty));
        assert!(read(empty).is_some());
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        let bodies: [&[u8]; 12] = [
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0}"#,
            br#"{"multicast_id":1,"multicast_id":2,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#,
            br#"{ "multicast_id":1,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#,
            br#"{"multicast_id":01,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#,
            br#"{"multicast_id":1.5,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#,
            br#"{"multicast_id":1,"success":4294967296,"failure":0,"canonical_ids":0,"results":[]}"#,
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0,"results":[{"message_id":"a\"b"}]}"#,
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0,"results":[{"message_id":"a","error":"b"}]}"#,
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0,"results":[{}]}"#,
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0,"results":[]} "#,
            br#"{"multicast_id":1,"success":0,"failure":0,"canonical_ids":0,"results":[],}"#,
            br#"{"message_id":123}"#,
        ];
        for body in bodies {
            assert_eq!(read(body), None, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            read(br#"{"multicast_id":-9223372036854775808,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#)
                .map(|m| m.multicast_id),
            Some(i64::MIN)
        );
        assert_eq!(
            read(br#"{"multicast_id":9223372036854775808,"success":0,"failure":0,"canonical_ids":0,"results":[]}"#),
            None
        );
    }

    fn result() -> impl Strategy<Value = RecipientResult> {
        let text = "[ -~ü✓\\\\\"\t]{0,12}";
        prop_oneof![
            (text, proptest::option::of(text)).prop_map(|(id, canonical)| RecipientResult {
                message_id: Some(id),
                registration_id: canonical,
                error: None,
            }),
            text.prop_map(|error| RecipientResult {
                message_id: None,
                registration_id: None,
                error: Some(error),
            }),
        ]
    }

    proptest! {
        /// What serde writes is read back as serde reads it, whenever the fast reader
        /// takes it (always, unless a string needs an escape).
        #[test]
        fn serialized_answers_read_as_serde_reads_them(
            multicast_id in any::<i64>(),
            counts in any::<(u32, u32, u32)>(),
            results in proptest::collection::vec(result(), 0..8),
        ) {
            let answer = MulticastResponse {
                multicast_id,
                success: counts.0,
                failure: counts.1,
                canonical_ids: counts.2,
                results,
            };
            let body = serde_json::to_vec(&answer).unwrap();
            let fast = read(&body);
            let escapes = body.windows(2).any(|w| w[0] == b'\\');
            if !escapes {
                prop_assert_eq!(fast.as_ref(), Some(&answer));
            }
            if let Some(fast) = fast {
                prop_assert_eq!(Some(fast), serde_read(&body));
            }
        }

        /// Cut or altered answers are either refused (left to serde) or read as serde reads
        /// them.
        #[test]
        fn damaged_answers_never_read_differently(
            cut in 0usize..200,
            flip in 0usize..200,
            byte in any::<u8>(),
        ) {
            let body = br#"{"multicast_id":77,"success":1,"failure":1,"canonical_ids":1,"results":[{"message_id":"0:1","registration_id":"n"},{"error":"Unavailable"}]}"#;
            let mut damaged = body.to_vec();
            if flip < damaged.len() {
                damaged[flip] = byte;
            }
            damaged.truncate(cut.max(1).min(damaged.len()));
            if let Some(fast) = read(&damaged) {
                prop_assert_eq!(Some(fast), serde_read(&damaged));
            }
        }
    }
}
