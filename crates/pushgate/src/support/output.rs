//! Printing per-token outcomes as a table, shared by every protocol of `pushgate send`.

use pushgate_proto::Outcome;
use pushgate_proto::token::short_token;

/// One printable line per token: index, shortened token, outcome kind and its detail.
pub fn print_outcomes<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Outcome)>) {
    println!("{:>5}  {:<14} {:<17} detail", "#", "token", "outcome");
    for (i, (token, outcome)) in rows.into_iter().enumerate() {
        println!(
            "{:>5}  {:<14} {:<17} {}",
            i,
            short_token(token),
            outcome.kind().as_str(),
            detail(outcome)
        );
    }
}

/// The part of an outcome a reader needs: message id, new token, or reason and wait.
pub fn detail(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered { message_id } => message_id.clone(),
        Outcome::Rotated {
            message_id,
            new_token,
        } => format!("{message_id} (new token {new_token})"),
        Outcome::RetryLater { reason, after, .. } | Outcome::Throttled { reason, after, .. } => {
            match after {
                Some(wait) => format!("{reason} (retry after {}s)", wait.as_secs()),
                None => reason.clone(),
            }
        }
        Outcome::TokenDead { reason }
        | Outcome::MessageRejected { reason }
        | Outcome::AuthFailed { reason } => reason.clone(),
    }
}
