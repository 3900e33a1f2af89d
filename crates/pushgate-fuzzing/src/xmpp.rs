//! The XMPP (CCS) stream parser.

/// `pushgate_xmpp::fuzzing::check_stream_parser`: never panics, holds no more than its
/// configured bound between events, and parses the same whole or in chunks.
pub fn xmpp_stream(data: &[u8]) {
    let _ = pushgate_xmpp::fuzzing::check_stream_parser(data);
}
