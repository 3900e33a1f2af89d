//! The gateway service (`pushgate serve`): HTTP API, delivery workers, housekeeping.
//!
//! Empty until the gateway issue lands; the crate exists now so that the dependency arrows
//! (client, store <- gateway <- pushgate) are fixed from the start.
