//! The stream-parser invariants, as one function shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/xmpp_stream.rs` at the repository root, through `pushgate-fuzzing`) and the unit tests that replay nasty inputs.
//!
//! Not part of the API: it panics when an invariant is broken, which is its job.

use crate::element::Element;
use crate::error::XmppError;
use crate::ns;
use crate::parser::{ParserConfig, StreamEvent, StreamParser};
use crate::stanza::Stanza;

/// Small limits, so fuzzing reaches them quickly.
pub const FUZZ_CONFIG: ParserConfig = ParserConfig {
    max_stanza_bytes: 512,
    max_header_bytes: 256,
    max_depth: 8,
};

/// What one run produced: events in order, then the error that stopped it, if any.
pub type Outcome = (Vec<StreamEvent>, Option<XmppError>);

fn is_success(el: &Element) -> bool {
    el.is("success", ns::SASL)
}

/// Drains every available event. A SASL `<success/>` triggers a stream restart, so the reset
/// path is exercised too. Checks the memory bound once the parser wants more input.
fn drain(p: &mut StreamParser, out: &mut Outcome) -> bool {
    loop {
        match p.next_event() {
            Ok(Some(ev)) => {
                if let StreamEvent::Stanza(el) = &ev {
                    // Classification and serialisation must not panic on anything parsed.
                    let _ = Stanza::from_element(el.clone()).to_xml();
                    if is_success(el) {
                        p.reset();
                    }
                }
                out.0.push(ev);
            }
            Ok(None) => {
                let bound = FUZZ_CONFIG
                    .max_stanza_bytes
                    .max(FUZZ_CONFIG.max_header_bytes);
                assert!(
                    p.buffered_len() <= bound,
                    "parser holds {} bytes, bound is {bound}",
                    p.buffered_len()
                );
                return true;
            }
            Err(e) => {
                out.1 = Some(e);
                return false;
            }
        }
    }
}

/// Feeds `stream` in chunks whose sizes come from `seed`, draining after each.
pub fn run_chunked(stream: &[u8], seed: u64) -> Outcome {
    let mut p = StreamParser::with_config(FUZZ_CONFIG);
    let mut out = (Vec::new(), None);
    let mut state = seed | 1;
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift64: cheap, deterministic chunk sizes of 1..=64 bytes.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = usize::try_from(state % 64).unwrap_or(0) + 1;
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        if p.feed(chunk).is_err() {
            break;
        }
        if !drain(&mut p, &mut out) {
            break;
        }
    }
    out
}

/// Feeds `stream` in one piece.
pub fn run_whole(stream: &[u8]) -> Outcome {
    let mut p = StreamParser::with_config(FUZZ_CONFIG);
    let mut out = (Vec::new(), None);
    if p.feed(stream).is_ok() {
        drain(&mut p, &mut out);
    }
    out
}

/// The fuzz entry point: the first 8 bytes seed the chunking, the rest is the stream. Asserts
/// no panic, the memory bound, and that chunking never changes the outcome.
pub fn check_stream_parser(data: &[u8]) -> Outcome {
    let (seed, stream) = if data.len() >= 8 {
        let (s, rest) = data.split_at(8);
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        (u64::from_le_bytes(b), rest)
    } else {
        (0x9E37_79B9_7F4A_7C15, data)
    };
    let whole = run_whole(stream);
    let chunked = run_chunked(stream, seed);
    assert_eq!(whole, chunked, "chunking changed the parse");
    whole
}
