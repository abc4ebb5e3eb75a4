//! Order states, event kinds and the one transition table between them.
//!
//! The table is a `match` on (state, event) with no wildcard arm: adding a state or an event
//! does not compile until every pair has a rule. Rules that depend on the order's numbers (a
//! fill completes the order or not; a cancel rejected goes back to where it was) name that
//! dependency here and are resolved in [`super::order::Order::apply`].

/// Where an order is in its life. `Lost` is ours: an order the venue answered "not found" for,
/// definitively, too many times in a row. It is not terminal: it keeps receiving fills and
/// keeps being cancelled, and it turns up again if the venue ever shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum OrderState {
    /// Recorded, not sent. A restart in this state proves the request never left.
    Initialized,
    /// Sent (or about to be), no answer yet.
    PendingCreate,
    Open,
    PartiallyFilled,
    /// A cancel is in flight; `previous` remembers where to go back if it is rejected.
    PendingCancel,
    Canceled,
    Filled,
    /// Rejected by the venue, or never sent.
    Failed,
    Expired,
    Lost,
}

pub const ALL_STATES: [OrderState; 10] = [
    OrderState::Initialized,
    OrderState::PendingCreate,
    OrderState::Open,
    OrderState::PartiallyFilled,
    OrderState::PendingCancel,
    OrderState::Canceled,
    OrderState::Filled,
    OrderState::Failed,
    OrderState::Expired,
    OrderState::Lost,
];

impl OrderState {
    pub fn name(self) -> &'static str {
        match self {
            OrderState::Initialized => "INITIALIZED",
            OrderState::PendingCreate => "PENDING_CREATE",
            OrderState::Open => "OPEN",
            OrderState::PartiallyFilled => "PARTIALLY_FILLED",
            OrderState::PendingCancel => "PENDING_CANCEL",
            OrderState::Canceled => "CANCELED",
            OrderState::Filled => "FILLED",
            OrderState::Failed => "FAILED",
            OrderState::Expired => "EXPIRED",
            OrderState::Lost => "LOST",
        }
    }

    pub fn from_name(name: &str) -> Option<OrderState> {
        ALL_STATES.into_iter().find(|s| s.name() == name)
    }

    /// No event moves the order out of here except a late fill (CANCELED, EXPIRED → FILLED).
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderState::Canceled | OrderState::Filled | OrderState::Failed | OrderState::Expired)
    }

    /// May rest on the venue (or be about to): counts in exposure. Includes `Initialized`
    /// because the tracker sends it next, and `Lost` because "not found" is not proof of absence.
    pub fn is_live(self) -> bool {
        !self.is_terminal()
    }
}

/// What happened to an order, without its data (see [`super::order::Event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    Submitted,
    Accepted,
    Rejected,
    Fill,
    CancelRequested,
    Canceled,
    CancelRejected,
    NotFound,
    Expired,
}

pub const ALL_EVENTS: [EventKind; 9] = [
    EventKind::Submitted,
    EventKind::Accepted,
    EventKind::Rejected,
    EventKind::Fill,
    EventKind::CancelRequested,
    EventKind::Canceled,
    EventKind::CancelRejected,
    EventKind::NotFound,
    EventKind::Expired,
];

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Submitted => "submitted",
            EventKind::Accepted => "accepted",
            EventKind::Rejected => "rejected",
            EventKind::Fill => "fill",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Canceled => "canceled",
            EventKind::CancelRejected => "cancel_rejected",
            EventKind::NotFound => "not_found",
            EventKind::Expired => "expired",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        ALL_EVENTS.into_iter().find(|e| e.name() == name)
    }
}

/// Why an event changed nothing. Not an error: the venue repeats itself, and messages race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// This trade id was already applied to the order.
    DuplicateFill,
    /// The same exchange id again, or an ack for an order already past it.
    DuplicateAck,
    /// A second cancel request while one is in flight.
    CancelInFlight,
    /// The same terminal news twice (canceled, expired, rejected).
    Duplicate,
    /// News that no longer matters: "not found" for an order we know is closed (venues forget
    /// closed orders), or a cancel's rejection arriving after the order closed or went LOST.
    Stale,
}

impl Ignored {
    pub fn name(self) -> &'static str {
        match self {
            Ignored::DuplicateFill => "duplicate_fill",
            Ignored::DuplicateAck => "duplicate_ack",
            Ignored::CancelInFlight => "cancel_in_flight",
            Ignored::Duplicate => "duplicate",
            Ignored::Stale => "stale",
        }
    }
}

/// The table's answer for one (state, event) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Move to this state.
    To(OrderState),
    /// Enter PENDING_CANCEL, remembering the current state.
    BeginCancel,
    /// Back to the state before the cancel request.
    Restore,
    /// Fill accounting; the order becomes FILLED when complete, else `partial` (which may be
    /// the state itself: a late partial fill leaves a CANCELED order CANCELED).
    Fill { partial: OrderState },
    /// An ack: record the exchange id; move to `to` (None = stay).
    Ack { to: Option<OrderState> },
    /// A lost order shows up again: OPEN, or PARTIALLY_FILLED if it has fills.
    Found,
    /// A definitive "not found": count it; at the limit the order becomes LOST.
    CountNotFound,
    /// A reject of the create, late: valid only if the venue never acked the order (no exchange
    /// id) and nothing traded; otherwise invalid.
    RejectUnacked,
    /// No change, and why.
    Ignore(Ignored),
    /// The event cannot happen in this state: a typed error, never a silent overwrite.
    Invalid,
}

/// The transition table. Every pair is spelled out.
pub fn rule(state: OrderState, event: EventKind) -> Rule {
    use EventKind as E;
    use OrderState as S;
    use Rule::*;
    match state {
        S::Initialized => match event {
            E::Submitted => To(S::PendingCreate),
            // Cancelling or failing an order that never left: the tracker fails it locally.
            E::Rejected => To(S::Failed),
            E::Accepted | E::Fill | E::CancelRequested | E::Canceled | E::CancelRejected | E::NotFound | E::Expired => {
                Invalid
            }
        },
        S::PendingCreate => match event {
            E::Submitted => Invalid,
            E::Accepted => Ack { to: Some(S::Open) },
            E::Rejected => To(S::Failed),
            // A fill can beat the create ack.
            E::Fill => Fill { partial: S::PartiallyFilled },
            E::CancelRequested => BeginCancel,
            // IOC or cancel-by-client-id before the ack.
            E::Canceled => To(S::Canceled),
            E::CancelRejected => Invalid,
            E::NotFound => CountNotFound,
            E::Expired => To(S::Expired),
        },
        S::Open => match event {
            E::Submitted | E::Rejected | E::CancelRejected => Invalid,
            E::Accepted => Ack { to: None },
            E::Fill => Fill { partial: S::PartiallyFilled },
            E::CancelRequested => BeginCancel,
            E::Canceled => To(S::Canceled),
            E::NotFound => CountNotFound,
            E::Expired => To(S::Expired),
        },
        S::PartiallyFilled => match event {
            E::Submitted | E::Rejected | E::CancelRejected => Invalid,
            // The fill beat the ack; the ack still brings the exchange id.
            E::Accepted => Ack { to: None },
            E::Fill => Fill { partial: S::PartiallyFilled },
            E::CancelRequested => BeginCancel,
            E::Canceled => To(S::Canceled),
            E::NotFound => CountNotFound,
            E::Expired => To(S::Expired),
        },
        S::PendingCancel => match event {
            E::Submitted => Invalid,
            // The create ack arriving after we asked to cancel: the cancel stays in flight.
            E::Accepted => Ack { to: None },
            E::Rejected => RejectUnacked,
            // Fills while the cancel is in flight: still cancelling, unless now complete.
            E::Fill => Fill { partial: S::PendingCancel },
            E::CancelRequested => Ignore(Ignored::CancelInFlight),
            E::Canceled => To(S::Canceled),
            E::CancelRejected => Restore,
            E::NotFound => CountNotFound,
            E::Expired => To(S::Expired),
        },
        S::Canceled => match event {
            E::Submitted | E::Rejected | E::CancelRequested | E::Expired => Invalid,
            E::Accepted => Ack { to: None },
            // A late fill: it happened before the cancel took effect.
            E::Fill => Fill { partial: S::Canceled },
            E::Canceled => Ignore(Ignored::Duplicate),
            E::CancelRejected | E::NotFound => Ignore(Ignored::Stale),
        },
        S::Filled => match event {
            E::Submitted | E::Rejected | E::CancelRequested | E::Canceled | E::Expired => Invalid,
            E::Accepted => Ack { to: None },
            // A new trade id past the quantity: an overfill, applied and flagged.
            E::Fill => Fill { partial: S::Filled },
            E::CancelRejected | E::NotFound => Ignore(Ignored::Stale),
        },
        S::Failed => match event {
            E::Submitted | E::Accepted | E::Fill | E::CancelRequested | E::Canceled | E::Expired => Invalid,
            E::Rejected => Ignore(Ignored::Duplicate),
            E::CancelRejected | E::NotFound => Ignore(Ignored::Stale),
        },
        S::Expired => match event {
            E::Submitted | E::Rejected | E::CancelRequested | E::Canceled => Invalid,
            E::Accepted => Ack { to: None },
            E::Fill => Fill { partial: S::Expired },
            E::Expired => Ignore(Ignored::Duplicate),
            E::CancelRejected | E::NotFound => Ignore(Ignored::Stale),
        },
        S::Lost => match event {
            E::Submitted => Invalid,
            E::Accepted => Found,
            E::Rejected => RejectUnacked,
            E::Fill => Fill { partial: S::PartiallyFilled },
            // Lost orders keep being cancelled.
            E::CancelRequested => BeginCancel,
            E::Canceled => To(S::Canceled),
            // The answer to a cancel sent before the order went LOST: it stays LOST.
            E::CancelRejected => Ignore(Ignored::Stale),
            E::NotFound => CountNotFound,
            E::Expired => To(S::Expired),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(OrderState::from_name(s.name()), Some(s));
        }
        for e in ALL_EVENTS {
            assert_eq!(EventKind::from_name(e.name()), Some(e));
        }
        assert_eq!(OrderState::from_name("open"), None);
        assert_eq!(EventKind::from_name("FILL"), None);
    }

    #[test]
    fn terminal_states_only_take_fills_acks_and_stale_news() {
        for s in ALL_STATES.into_iter().filter(|s| s.is_terminal()) {
            for e in ALL_EVENTS {
                let r = rule(s, e);
                let moves = matches!(
                    r,
                    Rule::To(_)
                        | Rule::BeginCancel
                        | Rule::Restore
                        | Rule::Found
                        | Rule::CountNotFound
                        | Rule::RejectUnacked
                );
                assert!(!moves, "{s:?} + {e:?} -> {r:?}: a terminal state must not move except by a fill");
            }
        }
    }
}
