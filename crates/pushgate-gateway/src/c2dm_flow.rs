//! The rules of the C2DM-era registration flow (django-c2dm's `registration` and
//! `confirmation` endpoints), kept in one place for the configuration that sets them and the
//! HTTP handlers (`api::c2dm_flow`) that apply them.

use std::ops::RangeInclusive;

/// C2DM's registration id limit, the django-c2dm default.
pub const REGISTRATION_ID_MAX: usize = 140;
/// Shortest accepted `device_id` and `registration_id` (django-c2dm).
pub const MIN_LEN: usize = 8;
/// Longest accepted `device_id` (django-c2dm's column).
pub const DEVICE_ID_MAX: usize = 64;
/// The data key (and collapse key) of the confirmation message, as django-c2dm named it.
pub const REGISTRATION_TOKEN_KEY: &str = "registration_token";
/// Length of a confirmation token.
pub const REGISTRATION_TOKEN_LEN: usize = 32;

/// The accepted length of a `device_id`.
pub fn device_id_len() -> RangeInclusive<usize> {
    MIN_LEN..=DEVICE_ID_MAX
}

/// The accepted length of a `registration_id`, up to the app's configured maximum.
pub fn registration_id_len(max: usize) -> RangeInclusive<usize> {
    MIN_LEN..=max
}
