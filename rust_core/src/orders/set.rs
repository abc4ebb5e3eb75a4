//! All orders of one venue account: found by client id or exchange id, changed one event or
//! a batch at a time, and summed into exposure.
use std::collections::HashMap;

use super::order::{Event, Order, OrderError, Outcome, Side};

/// Open and in-flight quantity of one market: everything that may still trade, including
/// orders not yet acked, orders being cancelled and lost orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Σ remaining (i128: many orders near i64::MAX would overflow an i64).
    pub buy_qty: i128,
    pub sell_qty: i128,
    /// Σ price × remaining, exact: the quote a buy side may still spend.
    pub buy_notional: i128,
    pub sell_notional: i128,
    pub orders: usize,
}

/// How a batch item names its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Client,
    Exchange,
}

#[derive(Default)]
pub struct OrderSet {
    orders: HashMap<String, Order>,
    by_exchange: HashMap<String, String>,
}

impl OrderSet {
    pub fn new() -> OrderSet {
        OrderSet::default()
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn insert(&mut self, order: Order) -> Result<(), OrderError> {
        if self.orders.contains_key(order.client_id()) {
            return Err(OrderError::DuplicateClientId { client_id: order.client_id().to_string() });
        }
        if let Some(eid) = order.exchange_id() {
            self.by_exchange.insert(eid.to_string(), order.client_id().to_string());
        }
        self.orders.insert(order.client_id().to_string(), order);
        Ok(())
    }

    /// Drops a closed order from memory (its history stays in the store). Live orders stay.
    pub fn forget(&mut self, client_id: &str) -> bool {
        match self.orders.get(client_id) {
            Some(o) if !o.state().is_live() => {
                if let Some(eid) = o.exchange_id() {
                    self.by_exchange.remove(eid);
                }
                self.orders.remove(client_id);
                true
            }
            _ => false,
        }
    }

    pub fn get(&self, client_id: &str) -> Option<&Order> {
        self.orders.get(client_id)
    }

    pub fn client_id_of(&self, exchange_id: &str) -> Option<&str> {
        self.by_exchange.get(exchange_id).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    pub fn apply(&mut self, client_id: &str, event: &Event) -> Result<Outcome, OrderError> {
        // Two orders under one exchange id would send one order's fills to the other.
        if let Event::Accepted { exchange_id } = event {
            match self.by_exchange.get(exchange_id) {
                Some(owner) if owner != client_id && self.orders.contains_key(client_id) => {
                    return Err(OrderError::ExchangeIdTaken {
                        client_id: client_id.to_string(),
                        exchange_id: exchange_id.clone(),
                        owner: owner.clone(),
                    });
                }
                _ => {}
            }
        }
        let order =
            self.orders.get_mut(client_id).ok_or_else(|| OrderError::UnknownOrder { id: client_id.to_string() })?;
        let had_id = order.exchange_id().is_some();
        let out = order.apply(event)?;
        if !had_id {
            if let Some(eid) = order.exchange_id() {
                self.by_exchange.insert(eid.to_string(), client_id.to_string());
            }
        }
        Ok(out)
    }

    pub fn apply_by(&mut self, id: &str, kind: IdKind, event: &Event) -> Result<Outcome, OrderError> {
        match kind {
            IdKind::Client => self.apply(id, event),
            IdKind::Exchange => {
                let cid =
                    self.by_exchange.get(id).cloned().ok_or_else(|| OrderError::UnknownOrder { id: id.to_string() })?;
                self.apply(&cid, event)
            }
        }
    }

    /// Applies each item in order; one item's error does not stop the others.
    pub fn apply_many<'a, I>(&mut self, items: I) -> Vec<Result<Outcome, OrderError>>
    where
        I: IntoIterator<Item = (&'a str, IdKind, &'a Event)>,
    {
        items.into_iter().map(|(id, kind, ev)| self.apply_by(id, kind, ev)).collect()
    }

    /// The market's exposure; an error only when its sums pass i128 (absurd orders).
    pub fn exposure(&self, symbol: &str) -> Result<Exposure, OrderError> {
        let overflow = || OrderError::ExposureOverflow { symbol: symbol.to_string() };
        let mut x = Exposure::default();
        for o in self.orders.values().filter(|o| o.symbol() == symbol && o.state().is_live()) {
            let rem = o.remaining() as i128;
            let notional = rem * o.price() as i128;
            let (qty, value) = match o.side() {
                Side::Buy => (&mut x.buy_qty, &mut x.buy_notional),
                Side::Sell => (&mut x.sell_qty, &mut x.sell_notional),
            };
            *qty = qty.checked_add(rem).ok_or_else(overflow)?;
            *value = value.checked_add(notional).ok_or_else(overflow)?;
            x.orders += 1;
        }
        Ok(x)
    }
}
