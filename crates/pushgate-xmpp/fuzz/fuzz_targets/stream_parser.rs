//! Fuzzes the XMPP stream parser: arbitrary bytes, fed whole and in arbitrary chunks (the
//! first 8 bytes seed the chunk sizes). `check_stream_parser` panics if the parser panics,
//! holds more than its configured bound after draining, or parses differently when chunked.
//! The same function runs on a corpus of nasty inputs in the crate's unit tests.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pushgate_xmpp::fuzzing::check_stream_parser(data);
});
