//! The server-to-client half of an HTTP/2 connection, watched (never changed) for the
//! frames by which h2 refuses something: RST_STREAM and GOAWAY with an error code. h2 only
//! logs why at its own debug level, so without this the emulator would refuse silently.

/// A refusal the server just sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// RST_STREAM: one stream refused or cut short.
    Reset {
        /// The stream.
        stream: u32,
        /// HTTP/2 error code.
        code: u32,
    },
    /// GOAWAY with an error: the whole connection refused.
    GoAway {
        /// Highest stream the server processed.
        last_stream: u32,
        /// HTTP/2 error code.
        code: u32,
        /// The debug data h2 attached (often empty).
        debug: String,
    },
}

const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
/// GOAWAY debug data kept for the log line.
const MAX_DEBUG: usize = 256;

/// Follows frame boundaries in the bytes the server writes.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    /// Frame header, then the captured payload of a RST_STREAM or GOAWAY.
    buf: Vec<u8>,
    /// Payload bytes to capture into `buf` (after the 9 header bytes).
    capture: usize,
    /// Payload bytes to skip.
    skip: usize,
}

impl Outbound {
    /// Takes bytes the server wrote; returns the refusals completed in them.
    pub(crate) fn observe(&mut self, mut bytes: &[u8]) -> Vec<Refusal> {
        let mut refusals = Vec::new();
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = bytes.len().min(self.skip);
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let want = if self.buf.len() < 9 {
                9
            } else {
                9 + self.capture
            };
            let n = bytes.len().min(want - self.buf.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() < want {
                break;
            }
            let len = usize::from(self.buf[0]) << 16
                | usize::from(self.buf[1]) << 8
                | usize::from(self.buf[2]);
            let kind = self.buf[3];
            if want == 9 {
                self.capture = match kind {
                    RST_STREAM if len == 4 => 4,
                    GOAWAY if len >= 8 => len.min(8 + MAX_DEBUG),
                    _ => 0,
                };
                if self.capture > 0 {
                    continue;
                }
                self.skip = len;
            } else {
                let payload = &self.buf[9..];
                let word = |i: usize| {
                    u32::from_be_bytes([payload[i], payload[i + 1], payload[i + 2], payload[i + 3]])
                };
                let stream = word(0) & 0x7fff_ffff;
                let refusal = if kind == RST_STREAM {
                    let stream_id =
                        u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]])
                            & 0x7fff_ffff;
                    Refusal::Reset {
                        stream: stream_id,
                        code: word(0),
                    }
                } else {
                    Refusal::GoAway {
                        last_stream: stream,
                        code: word(4),
                        debug: String::from_utf8_lossy(&payload[8..]).into_owned(),
                    }
                };
                let no_error = matches!(
                    refusal,
                    Refusal::Reset { code: 0, .. } | Refusal::GoAway { code: 0, .. }
                );
                if !no_error {
                    refusals.push(refusal);
                }
                self.skip = len - self.capture;
                self.capture = 0;
            }
            self.buf.clear();
        }
        refusals
    }
}

/// The name of an HTTP/2 error code (RFC 9113, section 7).
pub(crate) fn reason_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "unknown error code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(0);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn finds_resets_and_goaways_across_any_split() {
        let mut bytes = frame(0x4, 0, &[0; 6]); // SETTINGS
        bytes.extend(frame(0x0, 1, b"hello")); // DATA
        bytes.extend(frame(RST_STREAM, 1, &1u32.to_be_bytes()));
        bytes.extend(frame(RST_STREAM, 3, &0u32.to_be_bytes())); // NO_ERROR: not a refusal
        let mut goaway = 5u32.to_be_bytes().to_vec();
        goaway.extend(9u32.to_be_bytes());
        goaway.extend(b"bad hpack");
        bytes.extend(frame(GOAWAY, 0, &goaway));
        let expected = vec![
            Refusal::Reset { stream: 1, code: 1 },
            Refusal::GoAway {
                last_stream: 5,
                code: 9,
                debug: "bad hpack".to_owned(),
            },
        ];
        for chunk in [1, 2, 7, 9, 10, bytes.len()] {
            let mut outbound = Outbound::default();
            let found: Vec<_> = bytes
                .chunks(chunk)
                .flat_map(|c| outbound.observe(c))
                .collect();
            assert_eq!(found, expected, "chunks of {chunk}");
        }
        assert_eq!(reason_name(1), "PROTOCOL_ERROR");
    }
}
