//! One order: its numbers, its state, and how an event changes them.
//!
//! Prices and quantities are the market's scaled integers (`price_decimals`, `size_decimals`);
//! fees are integers in the scale the caller chose for fees. Nothing here rounds: the filled
//! cost is kept as the exact sum of price × quantity (i128), and the average price is derived.
use std::collections::HashSet;
use std::fmt;

use super::table::{rule, EventKind, Ignored, OrderState, Rule};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    pub fn from_name(name: &str) -> Option<Side> {
        match name {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// One execution, as the venue reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    pub trade_id: String,
    pub price: i64,
    pub qty: i64,
    /// Negative for a maker rebate.
    pub fee: i64,
    pub fee_asset: String,
    pub is_maker: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Submitted,
    Accepted { exchange_id: String },
    Rejected,
    Fill(Fill),
    CancelRequested,
    Canceled,
    CancelRejected,
    NotFound,
    Expired,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Submitted => EventKind::Submitted,
            Event::Accepted { .. } => EventKind::Accepted,
            Event::Rejected => EventKind::Rejected,
            Event::Fill(_) => EventKind::Fill,
            Event::CancelRequested => EventKind::CancelRequested,
            Event::Canceled => EventKind::Canceled,
            Event::CancelRejected => EventKind::CancelRejected,
            Event::NotFound => EventKind::NotFound,
            Event::Expired => EventKind::Expired,
        }
    }
}

/// What an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied { from: OrderState, to: OrderState },
    Ignored(Ignored),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderError {
    InvalidTransition {
        client_id: String,
        state: OrderState,
        event: EventKind,
    },
    /// The venue acked the order under a second, different exchange id.
    ExchangeIdConflict {
        client_id: String,
        known: String,
        got: String,
    },
    /// The venue acked the order under an exchange id another of our orders already has.
    ExchangeIdTaken {
        client_id: String,
        exchange_id: String,
        owner: String,
    },
    BadEvent {
        client_id: String,
        reason: &'static str,
    },
    BadOrder {
        client_id: String,
        reason: &'static str,
    },
    UnknownOrder {
        id: String,
    },
    DuplicateClientId {
        client_id: String,
    },
    Overflow {
        client_id: String,
    },
    /// A market's exposure does not fit its integers (orders near i64::MAX in price and size).
    ExposureOverflow {
        symbol: String,
    },
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::InvalidTransition { client_id, state, event } => {
                write!(f, "order {client_id}: event '{}' cannot happen in state {}", event.name(), state.name())
            }
            OrderError::ExchangeIdConflict { client_id, known, got } => {
                write!(f, "order {client_id}: acked as exchange id {got:?} but already known as {known:?}")
            }
            OrderError::ExchangeIdTaken { client_id, exchange_id, owner } => {
                write!(f, "order {client_id}: acked as exchange id {exchange_id:?}, which belongs to order {owner}")
            }
            OrderError::BadEvent { client_id, reason } => write!(f, "order {client_id}: bad event: {reason}"),
            OrderError::BadOrder { client_id, reason } => write!(f, "order {client_id:?}: {reason}"),
            OrderError::UnknownOrder { id } => write!(f, "no order with id {id:?}"),
            OrderError::DuplicateClientId { client_id } => write!(f, "client order id {client_id:?} is already in use"),
            OrderError::Overflow { client_id } => write!(f, "order {client_id}: filled quantity or cost overflows"),
            OrderError::ExposureOverflow { symbol } => write!(f, "exposure of {symbol:?} overflows"),
        }
    }
}

impl std::error::Error for OrderError {}

/// Default number of consecutive definitive "not found" answers before an order is LOST.
pub const DEFAULT_LOST_AFTER: u32 = 3;

#[derive(Clone, Debug)]
pub struct Order {
    client_id: String,
    exchange_id: Option<String>,
    symbol: String,
    side: Side,
    price: i64,
    quantity: i64,
    state: OrderState,
    /// The state a rejected cancel returns to: `Some` exactly while the order is PENDING_CANCEL.
    previous: Option<OrderState>,
    filled: i64,
    /// Σ price × qty over the fills, exact.
    cost: i128,
    /// Fee totals per asset, in arrival order of the first fill in that asset.
    fees: Vec<(String, i64)>,
    trade_ids: HashSet<String>,
    /// Consecutive definitive "not found" answers; any sign of life resets it.
    not_found: u32,
    lost_after: u32,
    /// Fills that arrived after the order was CANCELED or EXPIRED.
    late_fills: u32,
}

impl Order {
    pub fn new(
        client_id: &str,
        symbol: &str,
        side: Side,
        price: i64,
        quantity: i64,
        lost_after: u32,
    ) -> Result<Order, OrderError> {
        let bad = |reason| Err(OrderError::BadOrder { client_id: client_id.to_string(), reason });
        if client_id.is_empty() {
            return bad("client order id is empty");
        }
        if symbol.is_empty() {
            return bad("symbol is empty");
        }
        if price <= 0 {
            return bad("price must be positive");
        }
        if quantity <= 0 {
            return bad("quantity must be positive");
        }
        if lost_after == 0 {
            return bad("lost_after must be at least 1");
        }
        Ok(Order {
            client_id: client_id.to_string(),
            exchange_id: None,
            symbol: symbol.to_string(),
            side,
            price,
            quantity,
            state: OrderState::Initialized,
            previous: None,
            filled: 0,
            cost: 0,
            fees: Vec::new(),
            trade_ids: HashSet::new(),
            not_found: 0,
            lost_after,
            late_fills: 0,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    pub fn exchange_id(&self) -> Option<&str> {
        self.exchange_id.as_deref()
    }
    pub fn symbol(&self) -> &str {
        &self.symbol
    }
    pub fn side(&self) -> Side {
        self.side
    }
    pub fn price(&self) -> i64 {
        self.price
    }
    pub fn quantity(&self) -> i64 {
        self.quantity
    }
    pub fn state(&self) -> OrderState {
        self.state
    }
    /// Where a rejected cancel goes back to; None unless the order is PENDING_CANCEL.
    pub fn previous(&self) -> Option<OrderState> {
        self.previous
    }
    pub fn filled(&self) -> i64 {
        self.filled
    }
    pub fn cost(&self) -> i128 {
        self.cost
    }
    pub fn fees(&self) -> &[(String, i64)] {
        &self.fees
    }
    pub fn not_found(&self) -> u32 {
        self.not_found
    }
    pub fn lost_after(&self) -> u32 {
        self.lost_after
    }
    pub fn late_fills(&self) -> u32 {
        self.late_fills
    }
    pub fn fill_count(&self) -> usize {
        self.trade_ids.len()
    }
    pub fn has_trade(&self, trade_id: &str) -> bool {
        self.trade_ids.contains(trade_id)
    }

    /// Quantity filled beyond the order's quantity: flagged, never hidden.
    pub fn overfill(&self) -> i64 {
        (self.filled - self.quantity).max(0)
    }

    /// Quantity that may still trade: zero once the order is closed.
    pub fn remaining(&self) -> i64 {
        if self.state.is_live() {
            (self.quantity - self.filled).max(0)
        } else {
            0
        }
    }

    /// Average fill price in price units, rounded half away from zero; None before a fill.
    pub fn avg_price(&self) -> Option<i64> {
        if self.filled == 0 {
            return None;
        }
        let q = self.filled as i128;
        let (d, r) = (self.cost / q, self.cost % q);
        Some((if 2 * r >= q { d + 1 } else { d }) as i64)
    }

    /// Apply one event under the transition table. On an error the order is unchanged.
    pub fn apply(&mut self, event: &Event) -> Result<Outcome, OrderError> {
        let kind = event.kind();
        // A repeated trade id changes nothing, whatever the state.
        if let Event::Fill(f) = event {
            if self.trade_ids.contains(&f.trade_id) {
                return Ok(Outcome::Ignored(Ignored::DuplicateFill));
            }
        }
        let from = self.state;
        let invalid = || OrderError::InvalidTransition { client_id: self.client_id.clone(), state: from, event: kind };
        let to = match rule(from, kind) {
            Rule::Invalid => return Err(invalid()),
            Rule::Ignore(why) => return Ok(Outcome::Ignored(why)),
            Rule::To(to) => to,
            Rule::BeginCancel => {
                self.previous = Some(from);
                OrderState::PendingCancel
            }
            // PENDING_CANCEL is only entered by BeginCancel, so `previous` is set here.
            Rule::Restore => self.previous.ok_or_else(invalid)?,
            Rule::RejectUnacked => {
                // Only a create the venue never acknowledged, and that never traded, can be
                // rejected; anything else is a contradiction, refused with the order unchanged.
                if self.exchange_id.is_some() || self.filled > 0 {
                    return Err(invalid());
                }
                OrderState::Failed
            }
            Rule::CountNotFound => {
                self.not_found += 1;
                if self.not_found >= self.lost_after {
                    OrderState::Lost
                } else {
                    from
                }
            }
            Rule::Found => {
                self.take_exchange_id(event)?;
                if self.filled > 0 {
                    OrderState::PartiallyFilled
                } else {
                    OrderState::Open
                }
            }
            Rule::Ack { to } => {
                let new_id = self.take_exchange_id(event)?;
                if self.previous == Some(OrderState::PendingCreate) {
                    self.previous = Some(OrderState::Open);
                }
                match to {
                    Some(to) => to,
                    None if new_id => from,
                    None => return Ok(Outcome::Ignored(Ignored::DuplicateAck)),
                }
            }
            Rule::Fill { partial } => {
                let Event::Fill(f) = event else { unreachable!("the table maps only fills to Rule::Fill") };
                self.add_fill(f)?;
                if matches!(from, OrderState::Canceled | OrderState::Expired) {
                    self.late_fills += 1;
                }
                // A rejected cancel must come back to an order that is known to trade.
                if from == OrderState::PendingCancel {
                    self.previous = Some(OrderState::PartiallyFilled);
                }
                if self.filled >= self.quantity {
                    OrderState::Filled
                } else {
                    partial
                }
            }
        };
        // Any word from the venue other than "not found" is a sign of life.
        if !matches!(kind, EventKind::NotFound | EventKind::CancelRequested | EventKind::Submitted) {
            self.not_found = 0;
        }
        self.state = to;
        if to != OrderState::PendingCancel {
            self.previous = None;
        }
        Ok(Outcome::Applied { from, to })
    }

    /// Records the exchange id from an ack. Ok(true) if it was new, Ok(false) if the same one.
    fn take_exchange_id(&mut self, event: &Event) -> Result<bool, OrderError> {
        let Event::Accepted { exchange_id } = event else { unreachable!("only acks carry an exchange id") };
        match &self.exchange_id {
            Some(known) if known == exchange_id => Ok(false),
            Some(known) => Err(OrderError::ExchangeIdConflict {
                client_id: self.client_id.clone(),
                known: known.clone(),
                got: exchange_id.clone(),
            }),
            None => {
                self.exchange_id = Some(exchange_id.clone());
                Ok(true)
            }
        }
    }

    /// Validates before changing anything, so a bad fill leaves the order as it was.
    fn add_fill(&mut self, f: &Fill) -> Result<(), OrderError> {
        let bad = |reason| OrderError::BadEvent { client_id: self.client_id.clone(), reason };
        if f.trade_id.is_empty() {
            return Err(bad("fill without a trade id"));
        }
        if f.qty <= 0 {
            return Err(bad("fill quantity must be positive"));
        }
        if f.price <= 0 {
            return Err(bad("fill price must be positive"));
        }
        let overflow = || OrderError::Overflow { client_id: self.client_id.clone() };
        let filled = self.filled.checked_add(f.qty).ok_or_else(overflow)?;
        let cost = self.cost.checked_add(f.price as i128 * f.qty as i128).ok_or_else(overflow)?;
        let fee_slot = self.fees.iter().position(|(a, _)| *a == f.fee_asset);
        let fee_total = match fee_slot {
            Some(i) => self.fees[i].1.checked_add(f.fee).ok_or_else(overflow)?,
            None => f.fee,
        };
        self.filled = filled;
        self.cost = cost;
        match fee_slot {
            Some(i) => self.fees[i].1 = fee_total,
            None if f.fee != 0 || !f.fee_asset.is_empty() => self.fees.push((f.fee_asset.clone(), fee_total)),
            None => {}
        }
        self.trade_ids.insert(f.trade_id.clone());
        Ok(())
    }
}
