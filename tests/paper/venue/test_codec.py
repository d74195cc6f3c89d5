"""The venue connection's wire format: frames survive any TCP chunking, messages round-trip."""

from __future__ import annotations

import dataclasses
import typing
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.venue import codec, events, messages, wire
from paper.venue.engine import Venue, VenueConfig
from paper.venue.server import VenueServer
from tests.paper.venue.support import T0

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
money = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=8)


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    if tp is int:
        return st.integers(-(2**62), 2**62)
    if tp is str:
        return st.text(max_size=12)
    if tp is bool:
        return st.booleans()
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is Decimal:
        return st.one_of(prices, money)
    if dataclasses.is_dataclass(tp):
        return message_strategy(tp)  # type: ignore[arg-type]
    args = typing.get_args(tp)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return st.one_of(st.none(), strategy_for(inner))
    if typing.get_origin(tp) is tuple:
        return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
    raise TypeError(tp)


def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


MESSAGE_CLASSES = [
    obj
    for module in (messages, events)
    for obj in vars(module).values()
    if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
]
"""Every class of the venue connection: requests, replies and what they carry, and events."""


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_message_round_trips_through_a_frame(cls: type, data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))
    frame = wire.encode_frame([[wire.EVENT, 0, codec.encode_message(message)]])
    ((kind, rid, body),) = wire.FrameDecoder().feed(frame)
    assert (kind, rid) == (wire.EVENT, 0)
    assert codec.decode_message(body) == message


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 10**9), st.text(max_size=20)), max_size=5), max_size=8),
    st.lists(st.integers(1, 50), max_size=30),
)
def test_frames_reassemble_from_any_chunking(batches: list[list[tuple[int, str]]], cuts: list[int]) -> None:
    stream = b"".join(
        wire.encode_frame([[wire.REPLY, rid, ["NextId", 1, len(text)]] for rid, text in batch])
        for batch in batches
    )
    decoder = wire.FrameDecoder()
    got: list[list[Any]] = []
    pos = 0
    for cut in cuts:
        got += decoder.feed(stream[pos : pos + cut])
        pos += cut
    got += decoder.feed(stream[pos:])
    assert got == [[wire.REPLY, rid, ["NextId", 1, len(text)]] for batch in batches for rid, text in batch]


def test_bad_payloads_raise_named_errors() -> None:
    with pytest.raises(codec.CodecError):
        wire.FrameDecoder().feed(b"\x00\x00\x00\x03abc")
    with pytest.raises(codec.CodecError):
        wire.FrameDecoder().feed(b"\xff\xff\xff\xff")
    for bad in (["Nope"], ["NextId", "1", 2], ["NextId"], ["PlaceOrder", 1, 2, ["BUY", "x", "LMT"]], 7, []):
        with pytest.raises(codec.CodecError):
            codec.decode_message(bad)
    with pytest.raises(codec.CodecError):
        codec.decode_message(["NextId", True, 1])  # booleans are not integers here


def test_server_depth_rows_decode_to_the_same_changes_as_the_codec() -> None:
    server = VenueServer.__new__(VenueServer)
    server._price_text = {}
    venue = Venue(VenueConfig(), seed=3, start_ns=T0)
    venue.advance(T0 + 2_000_000_000)
    ((s, changes), *_) = venue.drain_depth()
    rows = server._depth_rows(s, changes)
    event = codec.decode_message(["DepthEvent", s.symbol, rows, 5])
    assert event == events.DepthEvent(
        s.symbol, tuple(messages.LevelChange(q, side, s.px(p), n) for q, side, p, n in changes), 5
    )
