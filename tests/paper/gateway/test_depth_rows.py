"""Positional depth rows: both ways clients apply them must give the venue's top rows."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from paper.tws.depth import DELETE, INSERT, UPDATE, GatewayBook, Row, apply_change, rows_for_change
from paper.venue.messages import ASK, BID, DepthSnapshot, Level, LevelChange


class DictClient:
    """ib_async: rows in a dict keyed by position, listed in insertion order."""

    def __init__(self) -> None:
        self.sides: dict[int, dict[int, tuple[str, int]]] = {ASK: {}, BID: {}}

    def apply(self, row: Row) -> None:
        position, op, side, price, size = row
        dom = self.sides[side]
        if op in (INSERT, UPDATE):
            dom[position] = (price, size)
        else:
            dom.pop(position, None)

    def view(self, side: int) -> list[tuple[str, int]]:
        return list(self.sides[side].values())


class ShiftingClient:
    """The EWrapper contract: insert shifts rows down, delete shifts them up."""

    def __init__(self) -> None:
        self.sides: dict[int, list[tuple[str, int]]] = {ASK: [], BID: []}

    def apply(self, row: Row) -> None:
        position, op, side, price, size = row
        rows = self.sides[side]
        if op == INSERT:
            rows.insert(position, (price, size))
        elif op == UPDATE:
            rows[position] = (price, size)
        else:
            del rows[position]

    def view(self, side: int) -> list[tuple[str, int]]:
        return self.sides[side]


changes = st.lists(
    st.tuples(st.sampled_from([ASK, BID]), st.integers(0, 12), st.sampled_from([0, 0, 100, 200, 300])),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(changes, st.integers(1, 6))
def test_clients_of_both_kinds_see_the_top_rows_after_any_changes(
    steps: list[tuple[int, int, int]], num_rows: int
) -> None:
    snapshot = DepthSnapshot(
        "AAPL", 0, (Level(Decimal("99.99"), 100),), (Level(Decimal("100.05"), 100),), 0
    )
    book = GatewayBook(snapshot)
    clients = (DictClient(), ShiftingClient())
    for row in book.snapshot_rows(num_rows):
        for client in clients:
            client.apply(row)
    for seq, (side, ticks, size) in enumerate(steps, start=1):
        # Bids at or below 99.99, asks at or above 100.00: a book that never crosses.
        offset = Decimal(ticks) / 100
        price = Decimal("99.99") - offset if side == BID else Decimal("100.00") + offset
        moved = apply_change(book, LevelChange(seq, side, price, size))
        if moved is None:
            continue
        for row in rows_for_change(book.side(side), side, *moved, num_rows):
            for client in clients:
                client.apply(row)
        for s in (ASK, BID):
            expected = [(format(p, "f"), q) for p, q in book.side(s).levels(num_rows)]
            for client in clients:
                assert client.view(s) == expected


def test_insert_at_the_top_rewrites_rows_below_and_appends() -> None:
    book = GatewayBook(
        DepthSnapshot("X", 0, (Level(Decimal("10.00"), 1), Level(Decimal("9.99"), 2)), (), 0)
    )
    moved = apply_change(book, LevelChange(1, BID, Decimal("10.01"), 5))
    assert moved == (0, 2, 3)
    rows = rows_for_change(book.bids, BID, *moved, 5)
    assert rows == [
        (0, UPDATE, BID, "10.01", 5),
        (1, UPDATE, BID, "10.00", 1),
        (2, INSERT, BID, "9.99", 2),
    ]
    gone = apply_change(book, LevelChange(2, BID, Decimal("10.01"), 0))
    assert gone == (0, 3, 2)
    assert rows_for_change(book.bids, BID, *gone, 5)[-1] == (2, DELETE, BID, "0", 0)
