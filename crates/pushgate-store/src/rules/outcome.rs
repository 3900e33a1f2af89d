//! What a provider answer does: the delivery's new state (and when a retry is due), then, in
//! order, the events and registry changes it causes (canonical ids, dead tokens).

use pushgate_proto::outcome::Outcome;
use time::OffsetDateTime;

use super::events::{self, DeliveryRef, NewEvent};
use super::registry::{self, Retirement};
use crate::model::DeliveryState;

/// The answered delivery's new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// Its state from now on.
    pub state: DeliveryState,
    /// When it is due again (retry-wait only); `None` leaves `due_at` as it was.
    pub due_at: Option<OffsetDateTime>,
}

/// Settles a delivery on its answer. A retriable answer waits until `retry_at` (the caller's
/// backoff; `None` means now) unless that is not before the `deadline`, in which case the
/// work expires; an unknown deadline (the delivery is gone) counts as passed.
pub fn settle(
    outcome: &Outcome,
    retry_at: Option<OffsetDateTime>,
    deadline: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Settlement {
    let state = |state| Settlement {
        state,
        due_at: None,
    };
    match outcome {
        Outcome::Delivered { .. } | Outcome::Rotated { .. } => state(DeliveryState::Sent),
        Outcome::TokenDead { .. } => state(DeliveryState::TokenDead),
        Outcome::MessageRejected { .. } | Outcome::AuthFailed { .. } => {
            state(DeliveryState::Failed)
        }
        Outcome::RetryLater { .. } | Outcome::Throttled { .. } => {
            let due = retry_at.unwrap_or(now);
            match deadline {
                Some(deadline) if due < deadline => Settlement {
                    state: DeliveryState::RetryWait,
                    due_at: Some(due),
                },
                _ => state(DeliveryState::Expired),
            }
        }
    }
}

/// Whose live holders [`effects`] needs to know for this answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolderLookup<'a> {
    /// The live device holding the answered token.
    pub answered_token: bool,
    /// The live device holding the canonical id the answer names.
    pub new_token: Option<&'a str>,
}

/// The registry facts an answer's effects depend on (see [`holders_needed`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenHolders {
    /// The live device holding the answered token, if looked up and found.
    pub of_answered_token: Option<String>,
    /// The live device holding the new token, if looked up and found.
    pub of_new_token: Option<String>,
}

/// Which holders to look up before asking for [`effects`]: only canonical ids (that change
/// the token) and dead tokens touch the registry.
pub fn holders_needed<'a>(outcome: &'a Outcome, answered_token: &str) -> HolderLookup<'a> {
    match outcome {
        Outcome::Rotated { new_token, .. } if new_token != answered_token => HolderLookup {
            answered_token: true,
            new_token: Some(new_token),
        },
        Outcome::TokenDead { .. } => HolderLookup {
            answered_token: true,
            new_token: None,
        },
        _ => HolderLookup {
            answered_token: false,
            new_token: None,
        },
    }
}

/// One consequence of an answer, executed in order in the answer's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append this event.
    Event(NewEvent),
    /// Mark the device invalid and settle its waiting work as [`registry::RETIRED_WORK`]
    /// (with one `DeliveryFailed` event each).
    Retire(Retirement),
    /// Give the device the new token and point its waiting work at it.
    ChangeToken {
        /// The device.
        device_id: String,
        /// Its token from now on.
        new_token: String,
    },
}

/// The consequences of an answer that settled `delivery` as `settled`, causes before their
/// consequences: an event first, then the registry change (whose own events follow).
pub fn effects(
    outcome: &Outcome,
    settled: DeliveryState,
    delivery: &DeliveryRef,
    holders: &TokenHolders,
) -> Vec<Effect> {
    let kind = outcome.kind().as_str();
    let failed =
        |state, reason: &str| Effect::Event(events::delivery_failed(delivery, state, kind, reason));
    match outcome {
        Outcome::Rotated { new_token, .. } => rotation(delivery, new_token, holders),
        Outcome::TokenDead { reason, .. } => {
            let device = holders.of_answered_token.as_deref();
            let mut out = Vec::new();
            if let Some(device) = device {
                let event = events::device_invalidated(device, &delivery.token, reason);
                out.push(Effect::Event(event));
            }
            out.push(failed(DeliveryState::TokenDead, reason));
            if let Some(device) = device {
                out.push(Effect::Retire(Retirement {
                    device_id: device.to_string(),
                    reason: reason.clone(),
                }));
            }
            out
        }
        Outcome::MessageRejected { reason, .. } | Outcome::AuthFailed { reason, .. } => {
            vec![failed(DeliveryState::Failed, reason)]
        }
        Outcome::RetryLater { reason, .. } | Outcome::Throttled { reason, .. }
            if settled == DeliveryState::Expired =>
        {
            vec![failed(DeliveryState::Expired, reason)]
        }
        _ => Vec::new(),
    }
}

/// A canonical id: the holder of the old token gets the new one, or is retired when another
/// live device already holds it.
fn rotation(delivery: &DeliveryRef, new_token: &str, holders: &TokenHolders) -> Vec<Effect> {
    if new_token == delivery.token {
        return Vec::new();
    }
    let device = holders.of_answered_token.as_deref();
    let holder = holders.of_new_token.as_deref();
    if device.is_none() && holder.is_some() {
        // An earlier answer (another message in flight to the old token) already applied
        // this canonical id: nothing changes, nothing to report again.
        return Vec::new();
    }
    let retire_for = match (device, holder) {
        (Some(device), Some(holder)) if holder != device => Some(holder),
        _ => None,
    };
    let mut out = vec![Effect::Event(events::token_rotated(
        device,
        &delivery.token,
        new_token,
        retire_for,
    ))];
    match (device, retire_for) {
        (Some(device), Some(holder)) => {
            out.push(Effect::Retire(registry::canonical_id_held(device, holder)))
        }
        (Some(device), None) => out.push(Effect::ChangeToken {
            device_id: device.to_string(),
            new_token: new_token.to_string(),
        }),
        (None, _) => {}
    }
    out
}

#[cfg(test)]
mod tests;
