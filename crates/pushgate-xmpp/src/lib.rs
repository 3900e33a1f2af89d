//! XMPP stream codec for both ends of CCS (stanzas, SASL PLAIN, TLS glue).
//!
//! Empty until the CCS issue lands; the crate exists now so that the workspace has the
//! shape DESIGN.md draws and the dependency arrows are fixed from the start.
