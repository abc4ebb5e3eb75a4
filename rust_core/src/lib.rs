//! mixmaker's pure-Rust core: exact fixed-point numbers, the L2 book, raw exchange message
//! parsing, the venue sync rules and the order state machine. No Python here: `cargo test -p mixmaker-core` runs alone;
//! the PyO3 face lives in the extension crate at the repository root.
#![forbid(unsafe_code)]

pub mod book;
pub mod far;
pub mod fixed;
pub mod json;
pub mod messages;
pub mod orders;
pub mod sync;
pub mod tape;

pub use book::{BookSide, L2Book};
pub use fixed::{format_fixed, parse_fixed, parse_lenient, parse_size, FixedError};
pub use messages::{parse_book_ticker, parse_message, BookTicker, DiffIds, Levels, Message, MessageError, Rule};
pub use sync::{BookSync, DesyncReason, State, Stats, SyncedBook};
