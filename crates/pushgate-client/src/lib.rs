//! Async senders for Google's push protocols.
