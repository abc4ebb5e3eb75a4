//! The shadow order ledger's core: an exhaustive order state machine with exact fill
//! accounting, the set of a venue account's orders (exposure, batch updates), and client ids.
pub mod client_id;
pub mod order;
pub mod set;
pub mod table;

#[cfg(test)]
mod tests;

pub use client_id::{ClientIdError, ClientIdGenerator};
pub use order::{Event, Fill, Order, OrderError, Outcome, Side, DEFAULT_LOST_AFTER};
pub use set::{Exposure, IdKind, OrderSet};
pub use table::{EventKind, Ignored, OrderState, ALL_EVENTS, ALL_STATES};
