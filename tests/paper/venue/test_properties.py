"""Properties of the book and the venue under random order flow and random orders of ours."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paper.venue.book import Book, Resting
from paper.venue.engine import Venue, VenueConfig
from paper.venue.messages import (
    ASK,
    BID,
    CANCEL_FAILURE_CODES,
    CODE_ORDER_CANCELLED,
    ORDER_REJECT_CODES,
    ExecutionFilter,
    OrderAck,
    OrderReject,
    OrderSpec,
    PlaceOrder,
)
from paper.venue.symbols import DEFAULT_SYMBOLS, with_event_rate
from tests.paper.venue.support import MS, T0, Trader, quiet_venue

# ---------------------------------------------------------------------------------- the book

book_orders = st.lists(
    st.tuples(st.sampled_from([BID, ASK]), st.integers(90, 110), st.integers(1, 50)), max_size=60
)


def build(orders: list[tuple[int, int, int]]) -> tuple[Book, list[Resting]]:
    """Insert non-crossing orders (a crossing one is skipped, as the venue would match it)."""
    book = Book()
    placed = []
    for side, price, qty in orders:
        best = book.best_ask() if side == BID else book.best_bid()
        if best is not None and (price >= best if side == BID else price <= best):
            continue
        order = Resting(side, price, qty)
        book.insert(order)
        placed.append(order)
    return book, placed


def assert_consistent(book: Book) -> None:
    for side in (BID, ASK):
        assert book.prices[side] == sorted(book.levels[side])
        for price, level in book.levels[side].items():
            assert level.orders, "empty levels are removed"
            assert level.size == sum(o.qty for o in level.orders.values()) > 0
            assert all(o.price == price and o.side == side for o in level.orders.values())
    assert not book.is_crossed()
    assert sorted(id(o) for o in book.model) == sorted(
        id(o)
        for side in (BID, ASK)
        for lv in book.levels[side].values()
        for o in lv.orders.values()
        if o.owner is None
    )


@settings(max_examples=300, deadline=None)
@given(
    book_orders, st.sampled_from([BID, ASK]), st.integers(1, 400), st.one_of(st.none(), st.integers(85, 115))
)
def test_take_fills_best_price_first_then_oldest_first(
    orders: list[tuple[int, int, int]], taker: int, qty: int, limit: int | None
) -> None:
    book, placed = build(orders)
    resting_before = sum(o.qty for o in placed)
    order_of = {id(o): i for i, o in enumerate(placed)}
    before = {id(o): o.qty for o in placed}
    fills = book.take(taker, qty, limit)
    taken = sum(q for _, q, _ in fills)
    assert taken <= qty
    # Conservation: what left the book is exactly what was filled.
    assert resting_before - sum(o.qty for o in placed) == taken
    prices = [p for _, _, p in fills]
    assert prices == (sorted(prices) if taker == BID else sorted(prices, reverse=True))
    if limit is not None:
        assert all(p <= limit if taker == BID else p >= limit for p in prices)
    for (a, _, pa), (b, _, pb) in zip(fills, fills[1:], strict=False):
        if pa == pb:
            assert order_of[id(a)] < order_of[id(b)], "time priority within a price"
    # Only the last maker can be partially filled; the others are fully consumed.
    for maker, q, _ in fills[:-1]:
        assert q == before[id(maker)]
    # Nothing better than the last fill price was left untouched on the other side.
    if fills and taken < qty:
        other = book.best_ask() if taker == BID else book.best_bid()
        assert other is None or limit is not None
    assert_consistent(book)


@settings(max_examples=200, deadline=None)
@given(book_orders, st.data())
def test_remove_and_reduce_keep_levels_consistent(
    orders: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    book, placed = build(orders)
    for order in placed:
        action = data.draw(st.sampled_from(["keep", "remove", "reduce"]))
        if action == "remove":
            book.remove(order)
        elif action == "reduce":
            book.reduce(order, data.draw(st.integers(1, order.qty)))
    assert_consistent(book)


# ------------------------------------------------------------------------------- the venue


def busy_config(rate: float = 400.0) -> VenueConfig:
    symbols = with_event_rate(DEFAULT_SYMBOLS[:2], {"*": rate})
    return VenueConfig(symbols=symbols)


action = st.one_of(
    st.tuples(
        st.just("place"),
        st.sampled_from(["AAPL", "MSFT"]),
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 600),
        st.sampled_from(["MKT", "LMT", "LMT", "LMT", "STP", "STP LMT", "TRAIL"]),
        st.integers(-30, 30),
        st.sampled_from(["DAY", "GTC", "IOC"]),
    ),
    st.tuples(st.just("modify"), st.integers(0, 50), st.integers(-5, 5), st.integers(-100, 100)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("wait"), st.integers(1, 400)),
)


def run(venue: Venue, actions: list[tuple[Any, ...]]) -> list[OrderAck]:
    """Apply the actions at increasing market times; returns the accepted new orders."""
    acks: list[OrderAck] = []
    next_id = 1
    t = venue.now_ns
    for step in actions:
        t += MS
        kind = step[0]
        if kind == "place":
            _, symbol, side, qty, order_type, offset, tif = step
            s = venue.by_symbol[str(symbol)]
            mid = s.mid_ticks() or s.flow.reference
            price = s.px(max(1, int(mid) + int(offset)))
            spec = OrderSpec(
                str(side),
                int(qty),
                str(order_type),
                lmt_price=price if order_type in ("LMT", "STP LMT") else None,
                aux_price=price
                if order_type in ("STP", "STP LMT")
                else (Decimal("0.05") if order_type == "TRAIL" else None),
                tif=str(tif),
            )
            reply = venue.place(PlaceOrder(1, next_id, spec, symbol=str(symbol)), t)
            next_id += 1
            if isinstance(reply, OrderAck):
                acks.append(reply)
        elif kind == "modify" and acks:
            _, index, offset, dq = step
            ack = acks[int(index) % len(acks)]
            spec = ack.update.order
            new_qty = max(1, spec.total_qty + int(dq))
            tick = Decimal("0.01")
            changes: dict[str, Any] = {"total_qty": new_qty}
            if spec.lmt_price is not None:
                changes["lmt_price"] = max(tick, spec.lmt_price + int(offset) * tick)
            venue.place(
                PlaceOrder(1, ack.update.order_id, replace(spec, **changes), symbol=ack.update.symbol), t
            )
        elif kind == "cancel" and acks:
            ack = acks[int(step[1]) % len(acks)]
            venue.cancel(1, ack.update.order_id, t)
        elif kind == "wait":
            t += int(step[1]) * MS
            venue.advance(t)
    return acks


def check_invariants(venue: Venue) -> None:
    reports = venue.executions_matching(ExecutionFilter())
    executions = [r.execution for r in reports]
    assert len({e.exec_id for e in executions}) == len(executions)
    perm_ids = [wo.perm_id for wo in venue.orders.values()]
    assert len(set(perm_ids)) == len(perm_ids)
    filled_by_perm: Counter[int] = Counter()
    for e in executions:
        filled_by_perm[e.perm_id] += e.shares
    for wo in venue.orders.values():
        assert wo.filled == filled_by_perm[wo.perm_id] <= wo.spec.total_qty
        if wo.is_open and wo.resting is not None:
            assert wo.resting.qty == wo.remaining
        if not wo.is_open:
            assert wo.resting is None
        if wo.status == "Filled":
            assert wo.filled == wo.spec.total_qty
    # Shares: positions are the net of what we bought and sold.
    for s in venue.states:
        net = sum(e.shares if e.side == "BOT" else -e.shares for e in executions if e.symbol == s.symbol)
        held = venue.account.positions[s.symbol].qty if s.symbol in venue.account.positions else 0
        assert held == net
        assert_consistent(s.book)
    # Cash: exactly the initial cash minus what we paid plus what we received minus commissions.
    spent = sum((e.price * (e.shares if e.side == "BOT" else -e.shares) for e in executions), Decimal(0))
    commissions = sum((r.commission.commission for r in reports), Decimal(0))
    assert venue.account.cash == venue.config.initial_cash - spent - commissions
    marks = venue.marks()
    equity_change = venue.account.net_liquidation(marks) - venue.config.initial_cash
    assert venue.account.realized + venue.account.unrealized(marks) == equity_change


@settings(max_examples=100, deadline=None)
@given(st.lists(action, max_size=40), st.integers(0, 2**32))
def test_random_orders_against_random_flow_conserve_shares_and_cash(
    actions: list[tuple[Any, ...]], seed: int
) -> None:
    venue = Venue(busy_config(), seed=seed, start_ns=T0)
    run(venue, actions)
    check_invariants(venue)


def test_seed_replay_gives_identical_fills_events_and_books() -> None:
    actions: list[tuple[Any, ...]] = []
    for i in range(60):
        actions.append(
            (
                "place",
                "AAPL" if i % 2 else "MSFT",
                "BUY" if i % 3 else "SELL",
                50 + i,
                "LMT",
                (i % 7) - 3,
                "GTC",
            )
        )
        actions.append(("wait", 37))
        if i % 5 == 0:
            actions.append(("place", "AAPL", "SELL", 120, "TRAIL", 0, "DAY"))
        if i % 4 == 0:
            actions.append(("modify", i, 1, -10))
        if i % 6 == 0:
            actions.append(("cancel", i // 2))

    def replay(seed: int) -> tuple[Any, ...]:
        venue = Venue(busy_config(), seed=seed, start_ns=T0)
        run(venue, actions)
        events = venue.drain()
        depth = [(s.symbol, changes) for s, changes in venue.drain_depth()]
        return (
            venue.executions_matching(ExecutionFilter()),
            events,
            depth,
            venue.depth_snapshot("AAPL"),
            venue.account_snapshot(),
        )

    first, second = replay(42), replay(42)
    assert len(first[0]) > 20, "the scenario must trade"
    assert first == second
    assert replay(43)[0] != first[0]


def test_depth_changes_applied_to_a_snapshot_reproduce_the_book_after_10000_updates() -> None:
    venue = Venue(busy_config(rate=5000.0), seed=5, start_ns=T0)
    venue.drain_depth()
    snap = venue.depth_snapshot("AAPL")
    mirror = {BID: {lv.price: lv.size for lv in snap.bids}, ASK: {lv.price: lv.size for lv in snap.asks}}
    seq = snap.seq
    applied = 0
    t = T0
    while applied < 10_000:
        t += 10 * MS
        venue.advance(t)
        if applied % 7 == 0:
            Trader_place = venue.place(
                PlaceOrder(9, applied + 1, OrderSpec("BUY", 300, "MKT"), symbol="AAPL"), t
            )
            assert isinstance(Trader_place, OrderAck)
        for s, changes in venue.drain_depth():
            if s.symbol != "AAPL":
                continue
            for change_seq, side, ticks, size in changes:
                assert change_seq == seq + 1
                seq = change_seq
                price = s.px(ticks)
                if size:
                    mirror[side][price] = size
                else:
                    mirror[side].pop(price, None)
                applied += 1
    final = venue.depth_snapshot("AAPL")
    assert final.seq == seq
    assert mirror[BID] == {lv.price: lv.size for lv in final.bids}
    assert mirror[ASK] == {lv.price: lv.size for lv in final.asks}


@settings(max_examples=30, deadline=None)
@given(st.lists(action, max_size=30), st.integers(0, 2**32))
def test_any_input_sequence_replays_identically(actions: list[tuple[Any, ...]], seed: int) -> None:
    def replay() -> tuple[object, ...]:
        venue = Venue(busy_config(), seed=seed, start_ns=T0)
        run(venue, actions)
        return venue.executions_matching(ExecutionFilter()), venue.drain(), venue.depth_snapshot("MSFT")

    assert replay() == replay()


modify = st.tuples(st.integers(0, 4), st.sampled_from(["smaller", "larger", "reprice", "same"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=1, max_size=5), st.lists(modify, max_size=12))
def test_modify_keeps_priority_only_for_a_size_decrease(
    sizes: list[int], changes: list[tuple[int, str]]
) -> None:

    v = quiet_venue()
    trader = Trader(v)
    acks = [trader.place("BUY", qty, lmt_price="9.99") for qty in sizes]
    expected = [a.perm_id for a in acks]  # queue at 9.99, oldest first
    for index, change in changes:
        ack = acks[index % len(acks)]
        current = v.order(1, ack.update.order_id)
        assert current is not None
        spec = current.order
        if change == "smaller":
            reply = trader.modify(ack, total_qty=max(1, spec.total_qty - 1))
        elif change == "larger":
            reply = trader.modify(ack, total_qty=spec.total_qty + 1)
            expected.remove(ack.perm_id)
            expected.append(ack.perm_id)
        elif change == "reprice":
            trader.modify(ack, lmt_price="9.98")
            reply = trader.modify(ack, lmt_price="9.99")
            expected.remove(ack.perm_id)
            expected.append(ack.perm_id)
        else:
            reply = trader.modify(ack, total_qty=spec.total_qty)
        assert isinstance(reply, OrderAck)
        level = v.by_symbol["AAPL"].book.levels[BID][999]
        assert [o.owner.perm_id for o in level.orders.values()] == expected
        assert level.size == sum(o.qty for o in level.orders.values())


any_decimal = st.one_of(
    st.none(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("500"), places=3),
)
any_spec = st.builds(
    OrderSpec,
    action=st.sampled_from(["BUY", "SELL", "buy", "", "SSHORT"]),
    total_qty=st.integers(-(2**63), 2**63),
    order_type=st.sampled_from(["MKT", "LMT", "STP", "STP LMT", "TRAIL", "MOC", ""]),
    lmt_price=any_decimal,
    aux_price=any_decimal,
    trailing_percent=any_decimal,
    trail_stop_price=any_decimal,
    tif=st.sampled_from(["DAY", "GTC", "IOC", "FOK", ""]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 40), any_spec, st.text(max_size=5)), max_size=12)
)
def test_any_order_input_is_acked_or_refused_with_a_code_and_breaks_nothing(
    orders: list[tuple[int, int, OrderSpec, str]],
) -> None:
    venue = Venue(busy_config(), seed=3, start_ns=T0)
    t = T0
    for client_id, order_id, spec, symbol in orders:
        t += MS
        reply = venue.place(PlaceOrder(client_id, order_id, spec, symbol=symbol or "AAPL"), t)
        assert isinstance(reply, OrderAck | OrderReject)
        if isinstance(reply, OrderReject):
            assert reply.code in ORDER_REJECT_CODES and reply.message
        result = venue.cancel(client_id, order_id + 1, t)
        assert result.code in CANCEL_FAILURE_CODES | {CODE_ORDER_CANCELLED}
    check_invariants(venue)
