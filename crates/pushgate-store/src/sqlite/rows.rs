//! Column lists, stored values and row decoding for the SQLite queries: shared with every
//! backend in [`crate::stored`]; times are Unix milliseconds.

pub(super) use crate::stored::decode::{channel, device, event, message};
pub(super) use crate::stored::{
    count, delivery_json_array, device_select, from_ms, message_columns, ms, ms_after,
    normalized_list,
};
