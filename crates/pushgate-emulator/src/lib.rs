//! Fake Google push servers.
