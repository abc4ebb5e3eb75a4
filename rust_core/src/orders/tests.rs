//! The transition table pair by pair, through real events on real orders, plus the numbers.
use super::*;
use OrderState as S;

const QTY: i64 = 10;
const LOST_AFTER: u32 = 3;

fn fill(trade: &str, price: i64, qty: i64) -> Event {
    Event::Fill(Fill { trade_id: trade.into(), price, qty, fee: 1, fee_asset: "USDT".into(), is_maker: true })
}

fn acked(id: &str) -> Event {
    Event::Accepted { exchange_id: id.into() }
}

fn order() -> Order {
    Order::new("c1", "BTCUSDT", Side::Buy, 100, QTY, LOST_AFTER).unwrap()
}

/// An order brought to `state` by the events that get it there on a venue.
fn order_in(state: OrderState) -> Order {
    let path: Vec<Event> = match state {
        S::Initialized => vec![],
        S::PendingCreate => vec![Event::Submitted],
        S::Open => vec![Event::Submitted, acked("e1")],
        S::PartiallyFilled => vec![Event::Submitted, acked("e1"), fill("t1", 100, 1)],
        S::PendingCancel => vec![Event::Submitted, acked("e1"), Event::CancelRequested],
        S::Canceled => vec![Event::Submitted, acked("e1"), Event::Canceled],
        S::Filled => vec![Event::Submitted, acked("e1"), fill("t1", 100, QTY)],
        S::Failed => vec![Event::Submitted, Event::Rejected],
        S::Expired => vec![Event::Submitted, acked("e1"), Event::Expired],
        S::Lost => vec![Event::Submitted, Event::NotFound, Event::NotFound, Event::NotFound],
    };
    let mut o = order();
    for e in &path {
        o.apply(e).unwrap();
    }
    assert_eq!(o.state(), state);
    o
}

fn sample(kind: EventKind) -> Event {
    match kind {
        EventKind::Submitted => Event::Submitted,
        EventKind::Accepted => acked("e1"),
        EventKind::Rejected => Event::Rejected,
        EventKind::Fill => fill("t9", 100, 1),
        EventKind::CancelRequested => Event::CancelRequested,
        EventKind::Canceled => Event::Canceled,
        EventKind::CancelRejected => Event::CancelRejected,
        EventKind::NotFound => Event::NotFound,
        EventKind::Expired => Event::Expired,
    }
}

/// The spec, written out independently of `table::rule`: the state after the event, `!` for a
/// typed error, `=` for "ignored, nothing changed". Columns follow `ALL_EVENTS`: submitted,
/// accepted, rejected, fill (partial), cancel_requested, canceled, cancel_rejected, not_found, expired.
const SPEC: [(OrderState, [&str; 9]); 10] = [
    (S::Initialized, ["PENDING_CREATE", "!", "FAILED", "!", "!", "!", "!", "!", "!"]),
    (
        S::PendingCreate,
        ["!", "OPEN", "FAILED", "PARTIALLY_FILLED", "PENDING_CANCEL", "CANCELED", "!", "PENDING_CREATE", "EXPIRED"],
    ),
    (S::Open, ["!", "=", "!", "PARTIALLY_FILLED", "PENDING_CANCEL", "CANCELED", "!", "OPEN", "EXPIRED"]),
    (
        S::PartiallyFilled,
        ["!", "=", "!", "PARTIALLY_FILLED", "PENDING_CANCEL", "CANCELED", "!", "PARTIALLY_FILLED", "EXPIRED"],
    ),
    (S::PendingCancel, ["!", "=", "!", "PENDING_CANCEL", "=", "CANCELED", "OPEN", "PENDING_CANCEL", "EXPIRED"]),
    (S::Canceled, ["!", "=", "!", "CANCELED", "!", "=", "=", "=", "!"]),
    (S::Filled, ["!", "=", "!", "FILLED", "!", "!", "=", "=", "!"]),
    (S::Failed, ["!", "!", "=", "!", "!", "!", "=", "=", "!"]),
    (S::Expired, ["!", "=", "!", "EXPIRED", "!", "!", "=", "=", "="]),
    (S::Lost, ["!", "OPEN", "FAILED", "PARTIALLY_FILLED", "PENDING_CANCEL", "CANCELED", "=", "LOST", "EXPIRED"]),
];

#[test]
fn every_state_event_pair_matches_the_spec() {
    assert_eq!(SPEC.len(), ALL_STATES.len());
    let mut checked = 0;
    for (state, row) in SPEC {
        for (kind, want) in ALL_EVENTS.into_iter().zip(row) {
            let mut o = order_in(state);
            let before = format!("{o:?}");
            let got = o.apply(&sample(kind));
            match (want, got) {
                ("!", Err(OrderError::InvalidTransition { state: s, event, .. })) => {
                    assert_eq!((s, event), (state, kind));
                    assert_eq!(format!("{o:?}"), before, "{state:?} + {kind:?}: an error changed the order");
                }
                ("=", Ok(Outcome::Ignored(_))) => {
                    assert_eq!(format!("{o:?}"), before, "{state:?} + {kind:?}: ignored but changed");
                }
                (name, Ok(Outcome::Applied { from, to })) if name != "!" && name != "=" => {
                    assert_eq!(from, state);
                    assert_eq!(to.name(), name, "{state:?} + {kind:?}");
                    assert_eq!(o.state(), to);
                }
                (w, g) => panic!("{state:?} + {kind:?}: want {w}, got {g:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 90);
}

#[test]
fn a_fill_that_completes_the_order_fills_it_from_every_state_that_takes_fills() {
    for state in [S::PendingCreate, S::Open, S::PartiallyFilled, S::PendingCancel, S::Canceled, S::Expired, S::Lost] {
        let mut o = order_in(state);
        let rest = QTY - o.filled();
        assert_eq!(o.apply(&fill("t9", 100, rest)).unwrap(), Outcome::Applied { from: state, to: S::Filled });
        assert_eq!(o.filled(), QTY);
        assert_eq!(o.overfill(), 0);
        assert_eq!(o.remaining(), 0);
    }
}

#[test]
fn a_repeated_trade_id_changes_nothing_in_any_state() {
    for state in ALL_STATES {
        let mut o = order_in(state);
        if o.state().is_terminal() && o.filled() == 0 && state != S::Canceled && state != S::Expired {
            continue; // FAILED takes no fills at all
        }
        if state == S::Initialized {
            continue;
        }
        o.apply(&fill("dup", 100, 1)).unwrap();
        let snapshot = format!("{o:?}");
        assert_eq!(o.apply(&fill("dup", 100, 1)).unwrap(), Outcome::Ignored(Ignored::DuplicateFill));
        // Same id with different numbers is still the same trade.
        assert_eq!(o.apply(&fill("dup", 999, 5)).unwrap(), Outcome::Ignored(Ignored::DuplicateFill));
        assert_eq!(format!("{o:?}"), snapshot);
    }
}

#[test]
fn late_fills_after_cancel_are_counted_and_overfills_are_flagged() {
    let mut o = order_in(S::Canceled);
    o.apply(&fill("a", 100, 4)).unwrap();
    assert_eq!((o.state(), o.filled(), o.late_fills(), o.remaining()), (S::Canceled, 4, 1, 0));
    o.apply(&fill("b", 100, 6)).unwrap();
    assert_eq!((o.state(), o.filled(), o.late_fills()), (S::Filled, 10, 2));
    o.apply(&fill("c", 100, 3)).unwrap();
    assert_eq!((o.state(), o.filled(), o.overfill()), (S::Filled, 13, 3));
}

#[test]
fn average_price_cost_and_fees_are_exact() {
    let mut o = order_in(S::Open);
    let f = |t: &str, px, q, fee, asset: &str| {
        Event::Fill(Fill { trade_id: t.into(), price: px, qty: q, fee, fee_asset: asset.into(), is_maker: false })
    };
    o.apply(&f("1", 6_165_970, 3, 5, "USDT")).unwrap();
    o.apply(&f("2", 6_165_980, 4, -2, "USDT")).unwrap(); // maker rebate
    o.apply(&f("3", 6_165_990, 2, 7, "BNB")).unwrap();
    assert_eq!(o.cost(), 6_165_970 * 3 + 6_165_980 * 4 + 6_165_990 * 2);
    // 55_493_810 / 9 = 6_165_978.89 → 6_165_979
    assert_eq!(o.avg_price(), Some(6_165_979));
    assert_eq!(o.fees(), &[("USDT".to_string(), 3), ("BNB".to_string(), 7)]);
    assert_eq!(o.fill_count(), 3);
    assert_eq!(order().avg_price(), None);
}

#[test]
fn a_rejected_cancel_restores_where_the_order_was() {
    // Cancel before the ack; the ack comes; the cancel fails: the order is OPEN.
    let mut o = order_in(S::PendingCreate);
    o.apply(&Event::CancelRequested).unwrap();
    o.apply(&acked("e7")).unwrap();
    assert_eq!(o.state(), S::PendingCancel);
    assert_eq!(o.exchange_id(), Some("e7"));
    o.apply(&Event::CancelRejected).unwrap();
    assert_eq!(o.state(), S::Open);

    // Cancel before the ack, then the create is rejected: FAILED.
    let mut o = order_in(S::PendingCreate);
    o.apply(&Event::CancelRequested).unwrap();
    assert_eq!(o.apply(&Event::Rejected).unwrap(), Outcome::Applied { from: S::PendingCancel, to: S::Failed });

    // A fill while the cancel is in flight; the cancel fails: PARTIALLY_FILLED, not OPEN.
    let mut o = order_in(S::PendingCancel);
    o.apply(&fill("x", 100, 2)).unwrap();
    o.apply(&Event::CancelRejected).unwrap();
    assert_eq!(o.state(), S::PartiallyFilled);

    // A lost order's cancel fails: still LOST.
    let mut o = order_in(S::Lost);
    o.apply(&Event::CancelRequested).unwrap();
    o.apply(&Event::CancelRejected).unwrap();
    assert_eq!(o.state(), S::Lost);
}

#[test]
fn a_reject_is_refused_once_the_venue_acked_the_order_or_it_traded() {
    // LOST, never acked, never traded: the late reject settles it.
    let mut o = order_in(S::Lost);
    assert_eq!(o.apply(&Event::Rejected).unwrap(), Outcome::Applied { from: S::Lost, to: S::Failed });
    // LOST with a fill: a reject contradicts the trade; refused, order unchanged.
    let mut o = order_in(S::Lost);
    o.apply(&fill("t1", 100, 1)).unwrap();
    for _ in 0..LOST_AFTER {
        o.apply(&Event::NotFound).unwrap();
    }
    assert_eq!(o.state(), S::Lost);
    let before = format!("{o:?}");
    assert!(matches!(o.apply(&Event::Rejected), Err(OrderError::InvalidTransition { .. })));
    assert_eq!(format!("{o:?}"), before);
    // LOST after an ack: the venue knew it; a reject is refused, in LOST and while cancelling it.
    let mut o = order_in(S::Open);
    for _ in 0..LOST_AFTER {
        o.apply(&Event::NotFound).unwrap();
    }
    assert!(matches!(o.apply(&Event::Rejected), Err(OrderError::InvalidTransition { .. })));
    o.apply(&Event::CancelRequested).unwrap();
    assert!(matches!(o.apply(&Event::Rejected), Err(OrderError::InvalidTransition { .. })));
    assert_eq!(o.state(), S::PendingCancel);
}

#[test]
fn previous_is_set_only_while_a_cancel_is_in_flight() {
    let mut o = order_in(S::Open);
    assert_eq!(o.previous(), None);
    o.apply(&Event::CancelRequested).unwrap();
    assert_eq!(o.previous(), Some(S::Open));
    // The cancel goes out, the order goes LOST meanwhile; the late cancel answer changes nothing.
    for _ in 0..LOST_AFTER {
        o.apply(&Event::NotFound).unwrap();
    }
    assert_eq!((o.state(), o.previous()), (S::Lost, None));
    assert_eq!(o.apply(&Event::CancelRejected).unwrap(), Outcome::Ignored(Ignored::Stale));
    assert_eq!(o.state(), S::Lost);
    o.apply(&Event::CancelRequested).unwrap();
    assert_eq!(o.previous(), Some(S::Lost));
    o.apply(&Event::Canceled).unwrap();
    assert_eq!((o.state(), o.previous()), (S::Canceled, None));
}

#[test]
fn lost_needs_consecutive_not_found_answers() {
    let mut o = order_in(S::PendingCreate);
    o.apply(&Event::NotFound).unwrap();
    o.apply(&Event::NotFound).unwrap();
    o.apply(&fill("f", 100, 1)).unwrap(); // a sign of life resets the count
    assert_eq!(o.not_found(), 0);
    o.apply(&Event::NotFound).unwrap();
    o.apply(&Event::NotFound).unwrap();
    assert_eq!(o.state(), S::PartiallyFilled);
    o.apply(&Event::NotFound).unwrap();
    assert_eq!(o.state(), S::Lost);
    // It turns up: it has a fill, so PARTIALLY_FILLED.
    o.apply(&acked("e1")).unwrap();
    assert_eq!(o.state(), S::PartiallyFilled);

    let mut one = Order::new("c", "S", Side::Sell, 1, 1, 1).unwrap();
    one.apply(&Event::Submitted).unwrap();
    one.apply(&Event::NotFound).unwrap();
    assert_eq!(one.state(), S::Lost);
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    assert!(matches!(Order::new("", "S", Side::Buy, 1, 1, 3), Err(OrderError::BadOrder { .. })));
    assert!(matches!(Order::new("c", "S", Side::Buy, 0, 1, 3), Err(OrderError::BadOrder { .. })));
    assert!(matches!(Order::new("c", "S", Side::Buy, 1, -1, 3), Err(OrderError::BadOrder { .. })));
    assert!(matches!(Order::new("c", "S", Side::Buy, 1, 1, 0), Err(OrderError::BadOrder { .. })));

    let mut o = order_in(S::Open);
    let before = format!("{o:?}");
    assert!(matches!(o.apply(&fill("", 100, 1)), Err(OrderError::BadEvent { .. })));
    assert!(matches!(o.apply(&fill("z", 100, 0)), Err(OrderError::BadEvent { .. })));
    assert!(matches!(o.apply(&fill("z", -1, 1)), Err(OrderError::BadEvent { .. })));
    assert_eq!(format!("{o:?}"), before);
    let mut big = order_in(S::Open);
    big.apply(&fill("big", 1, i64::MAX - 5)).unwrap();
    let full = format!("{big:?}");
    assert!(matches!(big.apply(&fill("big2", 1, 10)), Err(OrderError::Overflow { .. })));
    assert_eq!(format!("{big:?}"), full);
    let err = o.apply(&acked("other")).unwrap_err();
    assert_eq!(err, OrderError::ExchangeIdConflict { client_id: "c1".into(), known: "e1".into(), got: "other".into() });
    assert_eq!(format!("{o:?}"), before);
    assert!(err.to_string().contains("already known as \"e1\""));
}

#[test]
fn the_set_finds_orders_by_either_id_and_sums_exposure() {
    let mut set = OrderSet::new();
    let mk = |id: &str, side, px, q| Order::new(id, "BTCUSDT", side, px, q, 3).unwrap();
    set.insert(mk("b1", Side::Buy, 100, 5)).unwrap();
    set.insert(mk("b2", Side::Buy, 90, 7)).unwrap();
    set.insert(mk("s1", Side::Sell, 110, 4)).unwrap();
    set.insert(mk("s2", Side::Sell, 120, 9)).unwrap();
    set.insert(Order::new("o1", "ETHUSDT", Side::Buy, 10, 1, 3).unwrap()).unwrap();
    assert!(matches!(set.insert(mk("b1", Side::Buy, 1, 1)), Err(OrderError::DuplicateClientId { .. })));

    let ev = [Event::Submitted, acked("E-b1"), fill("t1", 100, 2)];
    for e in &ev {
        set.apply("b1", e).unwrap();
    }
    set.apply("b2", &Event::Submitted).unwrap(); // in flight, no ack: counts
    set.apply("s1", &Event::Submitted).unwrap();
    set.apply("s1", &acked("E-s1")).unwrap();
    set.apply("s1", &Event::CancelRequested).unwrap(); // cancel in flight: still counts
    set.apply("s2", &Event::Submitted).unwrap();
    set.apply("s2", &Event::Rejected).unwrap(); // closed: does not count
    assert_eq!(set.client_id_of("E-b1"), Some("b1"));

    let x = set.exposure("BTCUSDT").unwrap();
    assert_eq!((x.buy_qty, x.sell_qty, x.orders), (3 + 7, 4, 3));
    assert_eq!((x.buy_notional, x.sell_notional), (3 * 100 + 7 * 90, 4 * 110));

    // A batch: by exchange id, an unknown id and an invalid event do not stop the rest.
    let f2 = fill("t2", 100, 3);
    let unknown = Event::Canceled;
    let bad = Event::Submitted;
    let cancel = Event::Canceled;
    let out = set.apply_many([
        ("E-b1", IdKind::Exchange, &f2),
        ("nope", IdKind::Exchange, &unknown),
        ("b1", IdKind::Client, &bad),
        ("E-s1", IdKind::Exchange, &cancel),
    ]);
    assert_eq!(out[0], Ok(Outcome::Applied { from: S::PartiallyFilled, to: S::Filled }));
    assert!(matches!(out[1], Err(OrderError::UnknownOrder { .. })));
    assert!(matches!(out[2], Err(OrderError::InvalidTransition { .. })));
    assert_eq!(out[3], Ok(Outcome::Applied { from: S::PendingCancel, to: S::Canceled }));
    let x = set.exposure("BTCUSDT").unwrap();
    assert_eq!((x.buy_qty, x.sell_qty), (7, 0));

    // An exchange id already owned by another order is refused, and nothing changes.
    set.insert(mk("b3", Side::Buy, 80, 1)).unwrap();
    set.apply("b3", &Event::Submitted).unwrap();
    assert_eq!(
        set.apply("b3", &acked("E-b1")),
        Err(OrderError::ExchangeIdTaken { client_id: "b3".into(), exchange_id: "E-b1".into(), owner: "b1".into() })
    );
    assert_eq!((set.get("b3").unwrap().state(), set.get("b3").unwrap().exchange_id()), (S::PendingCreate, None));
    assert_eq!(set.client_id_of("E-b1"), Some("b1"));

    assert!(!set.forget("b2"), "a live order stays in memory");
    assert!(set.forget("b1"));
    assert_eq!(set.client_id_of("E-b1"), None);
    assert_eq!(set.len(), 5);
}
