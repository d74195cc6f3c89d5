"""Frame codec and client-message decoder: round trips, fixed layouts and fuzzing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.tws import incoming as im
from paper.tws.codec import (
    BadPrefix,
    FieldError,
    Fields,
    FrameDecoder,
    FrameTooLarge,
    MalformedFrame,
    ProtocolError,
    encode_field,
    encode_frame,
    encode_hello,
)

# The MKT BUY 100 placeOrder ib_async 2.1.0 sends at server version 178 (114 fields).
MKT_ORDER = (
    "3,8,265598,AAPL,STK,,0.0,,,SMART,NASDAQ,USD,AAPL,NMS,,,BUY,100,MKT,,,,,,O,0,,1,0,0,0,0,0,0,0,,"
    "0.0,,,,,,,0,,-1,0,,,0,,,0,0,,0,,,,,,0,,,,,0,,,,,,,,,,,0,,,0,0,,,0,,0,0,0,0,,,,,,,0,,,,,,,,,0,0,0,"
    "0,,,0,,"
).split(",")

text_field = st.text(st.characters(blacklist_characters="\0", codec="utf-8"), max_size=30)


def test_mkt_order_example_has_114_fields_and_decodes() -> None:
    assert len(MKT_ORDER) == 114
    msg = im.decode(MKT_ORDER)
    assert isinstance(msg, im.PlaceOrder)
    assert msg.order_id == 8
    assert msg.contract.con_id == 265598 and msg.contract.symbol == "AAPL"
    assert msg.action == "BUY" and msg.total_qty == Decimal(100) and msg.order_type == "MKT"
    assert msg.lmt_price is None and msg.aux_price is None
    assert msg.transmit and not msg.what_if and not msg.has_conditions


def test_limit_price_is_read_exactly_from_the_client_text() -> None:
    fields = list(MKT_ORDER)
    fields[18], fields[19] = "LMT", "150.05"
    msg = im.decode(fields)
    assert isinstance(msg, im.PlaceOrder)
    assert msg.lmt_price == Decimal("150.05")


def test_trailing_percent_and_unset_sentinels() -> None:
    fields = list(MKT_ORDER)
    fields[18] = "TRAIL"
    fields[20] = "1.7976931348623157e+308"  # ib_async's UNSET_DOUBLE for auxPrice
    fields[68], fields[69] = "", "2.5"  # trailStopPrice, trailingPercent
    msg = im.decode(fields)
    assert isinstance(msg, im.PlaceOrder)
    assert msg.aux_price is None and msg.trailing_percent == Decimal("2.5")


def test_what_if_flag_is_found_behind_the_optional_blocks() -> None:
    fields = list(MKT_ORDER)
    fields[84] = "1"
    msg = im.decode(fields)
    assert isinstance(msg, im.PlaceOrder) and msg.what_if


def test_truncated_place_order_names_the_missing_field() -> None:
    with pytest.raises(FieldError) as info:
        im.decode(MKT_ORDER[:40])
    assert info.value.msg_id == 3 and info.value.value is None


def test_out_of_range_count_field_is_a_field_error() -> None:
    fields = list(MKT_ORDER)
    fields[89] = "99999999"  # conditionCount
    with pytest.raises(FieldError, match="conditionCount"):
        im.decode(fields)


def test_non_integer_order_id_is_a_field_error() -> None:
    fields = list(MKT_ORDER)
    fields[1] = "8.5"
    with pytest.raises(FieldError, match="orderId"):
        im.decode(fields)


def test_unknown_message_id() -> None:
    with pytest.raises(im.UnknownMessage):
        im.decode(["999", "1"])


def test_startup_requests_of_ib_async_decode() -> None:
    assert im.decode(["71", "2", "12", ""]) == im.StartApi(12, "")
    assert im.decode(["61", "1"]) == im.ReqPositions()
    assert im.decode(["5", "1"]) == im.ReqOpenOrders()
    assert im.decode(["99", "0"]) == im.ReqCompletedOrders(False)
    assert im.decode(["6", "2", "1", "DU1"]) == im.ReqAccountUpdates(True, "DU1")
    assert im.decode(["76", "1", "3", "DU1", "", "0"]) == im.ReqAccountUpdatesMulti(3, "DU1", "")
    assert im.decode(["7", "3", "2", "0", "", "", "", "", "", ""]) == im.ReqExecutions(
        2, 0, "", "", "", "", "", ""
    )
    depth = im.decode("10,5,7,265598,AAPL,STK,,0.0,,,SMART,NASDAQ,USD,AAPL,NMS,5,0,".split(","))
    assert isinstance(depth, im.ReqMktDepth) and depth.num_rows == 5 and depth.req_id == 7


def test_encode_field_forms() -> None:
    assert encode_field(None) == ""
    assert encode_field(True) == "1" and encode_field(False) == "0"
    assert encode_field(Decimal("1E+2")) == "100"
    assert encode_field(Decimal("190.025")) == "190.025"
    assert encode_field(float("nan")) == ""
    with pytest.raises(ValueError):
        encode_field("a\0b")


def test_handshake_prefix_and_frames_decode_across_arbitrary_splits() -> None:
    data = encode_hello(157, 178) + encode_frame([71, 2, 12, ""])
    for cut in range(len(data) + 1):
        decoder = FrameDecoder(expect_prefix=True)
        frames = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert frames == [["v157..178"], ["71", "2", "12", ""]]


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(BadPrefix):
        FrameDecoder(expect_prefix=True).feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(BadPrefix):
        FrameDecoder(expect_prefix=True).feed(b"AP")  # partial is fine...
        FrameDecoder(expect_prefix=True).feed(b"AX")  # ...a wrong partial is not


def test_huge_length_and_unterminated_payload_are_protocol_errors() -> None:
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed(b"\xff\xff\xff\xff")
    with pytest.raises(MalformedFrame):
        FrameDecoder().feed(b"\x00\x00\x00\x02ab")
    with pytest.raises(MalformedFrame):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


@settings(deadline=None)  # a shared CI machine must not fail on a slow example
@given(st.lists(st.lists(text_field, min_size=1, max_size=8), max_size=10), st.data())
def test_frames_round_trip_through_any_chunking(messages: list[list[str]], data: st.DataObject) -> None:
    stream = encode_hello(157, 178) + b"".join(encode_frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = FrameDecoder(expect_prefix=True)
    out: list[list[str]] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[last:cut])
        last = cut
    assert out == [["v157..178"], *messages]
    assert decoder.buffered == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_frame_decoder_raises_only_protocol_errors(data: bytes, prefix: bool) -> None:
    decoder = FrameDecoder(expect_prefix=prefix)
    try:
        frames = decoder.feed(data)
    except ProtocolError:
        return
    assert all(isinstance(f, str) for frame in frames for f in frame)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.lists(text_field, min_size=1, max_size=130),
        st.lists(st.sampled_from(["", "0", "1", "-1", "x", "1.5", "1e400", "nan", "BAG"]), max_size=130),
        st.builds(
            lambda mid, rest: [mid, *rest],
            st.sampled_from([str(i) for i in sorted(im.KNOWN_IDS)] + ["999", "", "-3"]),
            st.lists(st.sampled_from(["", "0", "1", "7", "AAPL", "STK", "x", "2.5"]), max_size=130),
        ),
    )
)
def test_fuzz_message_decoder_raises_only_named_errors(fields: list[str]) -> None:
    try:
        message = im.decode(fields)
    except (FieldError, im.UnknownMessage):
        return
    assert type(message).__module__ == im.__name__


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(MKT_ORDER) - 1), st.integers(1, 30))
def test_fuzz_truncated_and_padded_orders(cut: int, pad: int) -> None:
    try:
        im.decode(MKT_ORDER[:cut])
    except (FieldError, im.UnknownMessage):
        pass
    # Trailing fields beyond the layout (a newer client's extras) are tolerated.
    msg = im.decode(MKT_ORDER + [""] * pad)
    assert isinstance(msg, im.PlaceOrder)


order_values = st.fixed_dictionaries(
    {
        1: st.sampled_from(["8", "123456", "x", ""]),
        2: st.sampled_from(["0", "265598", "", "abc"]),
        16: st.sampled_from(["BUY", "SELL"]),
        17: st.sampled_from(["100", "100.0", "0.5", "", "lots"]),
        18: st.sampled_from(["MKT", "LMT", "STP", "STP LMT", "TRAIL", "PEG BENCH"]),
        19: st.sampled_from(["", "150.05", "1.7976931348623157e+308", "x"]),
        20: st.sampled_from(["", "0.0", "2.5"]),
        21: st.sampled_from(["", "DAY", "GTC", "IOC"]),
        27: st.sampled_from(["1", "0", "2"]),
        28: st.sampled_from(["0", "", "7"]),
        33: st.sampled_from(["0", "1"]),
        68: st.sampled_from(["", "99.5"]),
        69: st.sampled_from(["", "1.5"]),
        72: st.sampled_from(["", "0.0", "0.5"]),
        84: st.sampled_from(["0", "1"]),
        89: st.sampled_from(["0", ""]),
    }
)


@settings(max_examples=400, deadline=None)
@given(order_values)
def test_plain_order_fast_path_agrees_with_the_field_walker(values: dict[int, str]) -> None:
    fields = list(MKT_ORDER)
    for index, value in values.items():
        fields[index] = value

    def outcome(read: Callable[[], object]) -> object:
        try:
            return read()
        except FieldError as exc:
            return ("FieldError", exc.name)

    # decode() takes the positional fast path whenever the order has no optional block.
    assert outcome(lambda: im.decode(fields)) == outcome(lambda: im._any_order(Fields(fields)))
