//! CSRF tokens: every form carries its session's token in a hidden `csrf` field, and every
//! POST is refused (403) unless the field matches, compared in constant time. The sign-in
//! form, which has no session yet, pairs its field with a cookie of its own instead.

use super::page::ConsoleError;
use super::session::Viewer;

/// The cookie that carries the sign-in form's token.
pub const LOGIN_COOKIE: &str = "pushgate_console_login";

/// True when `given` equals `expected`, compared in constant time.
pub fn matches(expected: &str, given: &str) -> bool {
    !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes())
            .is_ok()
}

/// Refuses a form whose `csrf` field is not the session's token.
pub fn check(viewer: &Viewer, given: &str) -> Result<(), ConsoleError> {
    if matches(&viewer.csrf, given) {
        Ok(())
    } else {
        Err(ConsoleError::forbidden(
            "the form's CSRF token is missing or does not belong to this session; reload the \
             page and try again",
        ))
    }
}
