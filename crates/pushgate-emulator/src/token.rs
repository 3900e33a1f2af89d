//! Registration tokens the emulator issues: real-looking, and self-checking.
//!
//! Form: `<11 chars>:APA91b<126 chars><8 chars checksum>`, 152 characters of the base64url
//! alphabet, like an FCM token. The checksum is a fixed function of everything before it (no
//! per-instance secret), so a token issued by another emulator instance is well-formed (and
//! answered `NotRegistered`), while a truncated, extended or edited token is detectably
//! malformed (`InvalidRegistration`), as docs/protocols.md,
//! "Legacy HTTP: per-recipient error codes" asks.

use rand::Rng;

/// Length of every token the emulator issues.
pub const TOKEN_LEN: usize = 152;
/// Length of the instance-id part before the colon.
const IID_LEN: usize = 11;
/// The marker real GCM/FCM registration ids carry after the instance id.
const MARKER: &str = ":APA91b";
/// Characters of the checksum at the end.
const CHECK_LEN: usize = 8;
/// Random characters between the marker and the checksum.
const BODY_LEN: usize = TOKEN_LEN - IID_LEN - MARKER.len() - CHECK_LEN;
/// The base64url alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new random, well-formed token.
pub fn generate() -> String {
    generate_with(&mut rand::rng())
}

/// A new well-formed token drawn from `rng`.
pub fn generate_with<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut out = Vec::with_capacity(TOKEN_LEN);
    push_random(rng, &mut out, IID_LEN);
    out.extend_from_slice(MARKER.as_bytes());
    push_random(rng, &mut out, BODY_LEN);
    push_checksum(&mut out, CHECK_LEN);
    // Every byte comes from ALPHABET or MARKER: ASCII.
    out.into_iter().map(char::from).collect()
}

/// True when `token` has the emulator's token form and its checksum matches: a token some
/// emulator issued, untouched. False for anything truncated, extended or edited.
pub fn is_well_formed(token: &str) -> bool {
    let bytes = token.as_bytes();
    if bytes.len() != TOKEN_LEN || &bytes[IID_LEN..IID_LEN + MARKER.len()] != MARKER.as_bytes() {
        return false;
    }
    let head = &bytes[..TOKEN_LEN - CHECK_LEN];
    head[..IID_LEN].iter().all(in_alphabet)
        && head[IID_LEN + MARKER.len()..].iter().all(in_alphabet)
        && checksum_matches(bytes, CHECK_LEN)
}

/// True for a byte of the base64url alphabet.
pub(crate) fn in_alphabet(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'
}

/// Appends `len` alphabet characters encoding the checksum of everything already in `out`:
/// the self-check shared by every kind of id the emulator issues.
pub(crate) fn push_checksum(out: &mut Vec<u8>, len: usize) {
    let check = checksum(out);
    out.extend((0..len).map(|i| ALPHABET[((check >> (6 * i)) & 63) as usize]));
}

/// True when the last `len` bytes of `bytes` are the checksum of the ones before them.
pub(crate) fn checksum_matches(bytes: &[u8], len: usize) -> bool {
    if bytes.len() < len {
        return false;
    }
    let (head, tail) = bytes.split_at(bytes.len() - len);
    let check = checksum(head);
    tail.iter()
        .enumerate()
        .all(|(i, b)| *b == ALPHABET[((check >> (6 * i)) & 63) as usize])
}

/// Appends `n` random alphabet characters (10 per drawn `u64`).
pub(crate) fn push_random<R: Rng + ?Sized>(rng: &mut R, out: &mut Vec<u8>, n: usize) {
    let mut left = n;
    while left > 0 {
        let mut bits = rng.next_u64();
        for _ in 0..left.min(10) {
            out.push(ALPHABET[(bits & 63) as usize]);
            bits >>= 6;
        }
        left = left.saturating_sub(10);
    }
}

/// 64-bit FNV-1a: cheap, fixed, good enough to catch edits (2^-48 chance of a false pass).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_look_real_and_pass() {
        for _ in 0..200 {
            let t = generate();
            assert_eq!(t.len(), 152);
            assert_eq!(&t[11..18], ":APA91b");
            assert!(is_well_formed(&t), "{t}");
        }
        assert_ne!(generate(), generate());
    }

    #[test]
    fn truncated_or_extended_tokens_fail() {
        let t = generate();
        assert!(!is_well_formed(&t[..t.len() - 1]));
        assert!(!is_well_formed(&t[..t.len() - 5]));
        assert!(!is_well_formed(&t[1..]));
        assert!(!is_well_formed(&format!("{t}A")));
        assert!(!is_well_formed(&format!("A{t}")));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn any_single_edit_fails() {
        let t = generate();
        for i in (0..t.len()).filter(|i| !(11..18).contains(i)) {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(bytes).unwrap();
            assert!(!is_well_formed(&edited), "edit at {i} passed");
        }
    }

    #[test]
    fn wrong_marker_or_alphabet_fails() {
        let t = generate();
        assert!(!is_well_formed(&t.replacen(":APA91b", ":APA91c", 1)));
        let mut bytes = t.into_bytes();
        bytes[3] = b'+';
        // Not valid for the alphabet even if the checksum happened to match.
        assert!(!is_well_formed(&String::from_utf8(bytes).unwrap()));
        // Multi-byte characters never panic on slicing.
        assert!(!is_well_formed(&"é".repeat(76)));
    }
}
