"""JSON codec for the venue messages: each dataclass is a positional array.

A top-level message is ``["ClassName", field1, field2, ...]``; nested dataclasses are arrays
without the name (the field's type says what they are). ``Decimal`` travels as its string so
no price or amount ever passes through a float. A decoder accepts arrays shorter than the
class (trailing fields take their defaults), so fields can be appended without breaking an
older peer; longer arrays are cut, so a newer peer's extra fields are ignored.

Converters are built once per class from its type hints, which keeps the per-message cost to a
list comprehension (the depth stream moves tens of thousands of these per second).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from paper.venue import events, messages

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


class CodecError(ValueError):
    """A payload that does not decode to a known message (named so bad input is reported)."""


def _identity(value: Any) -> Any:
    return value


def _enc_decimal(value: Decimal) -> str:
    return str(value)


def _dec_decimal(value: Any) -> Decimal:
    if not isinstance(value, str | int):
        raise CodecError(f"expected a decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise CodecError(f"bad decimal {value!r}") from exc


def _dec_int(value: Any) -> int:
    if type(value) is not int:
        raise CodecError(f"expected an integer, got {value!r}")
    return value


def _dec_str(value: Any) -> str:
    if type(value) is not str:
        raise CodecError(f"expected a string, got {value!r}")
    return value


def _dec_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise CodecError(f"expected a boolean, got {value!r}")
    return value


def _dec_float(value: Any) -> float:
    if type(value) not in (int, float):
        raise CodecError(f"expected a number, got {value!r}")
    return float(value)


_PRIMITIVES: dict[Any, tuple[Encoder, Decoder]] = {
    int: (_identity, _dec_int),
    str: (_identity, _dec_str),
    bool: (_identity, _dec_bool),
    float: (_identity, _dec_float),
    Decimal: (_enc_decimal, _dec_decimal),
}


def _optional(enc: Encoder, dec: Decoder) -> tuple[Encoder, Decoder]:
    return (lambda v: None if v is None else enc(v)), (lambda v: None if v is None else dec(v))


def _sequence(enc: Encoder, dec: Decoder) -> tuple[Encoder, Decoder]:
    def decode(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise CodecError(f"expected a list, got {value!r}")
        return tuple(dec(v) for v in value)

    return (lambda v: [enc(x) for x in v]), decode


def _converters(tp: Any) -> tuple[Encoder, Decoder]:
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _struct(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return _optional(*_converters(inner))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(*_converters(args[0]))
    raise TypeError(f"no wire form for {tp!r}")


_STRUCTS: dict[type, tuple[Encoder, Decoder]] = {}


def _struct(cls: type) -> tuple[Encoder, Decoder]:
    if cls in _STRUCTS:
        return _STRUCTS[cls]
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    convs = [_converters(hints[f.name]) for f in fields]
    encs = [c[0] for c in convs]
    decs = [c[1] for c in convs]
    required = sum(
        1 for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    pairs = list(zip(names, encs, strict=True))
    n = len(names)

    def encode(obj: Any) -> list[Any]:
        return [enc(getattr(obj, name)) for name, enc in pairs]

    def decode(value: Any) -> Any:
        if not isinstance(value, list) or len(value) < required:
            raise CodecError(f"{cls.__name__}: expected at least {required} fields, got {value!r}")
        return cls(*[dec(v) for dec, v in zip(decs, value[:n], strict=False)])

    _STRUCTS[cls] = (encode, decode)
    return encode, decode


def _message_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in (messages, events):
        for name, obj in vars(module).items():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found[name] = obj
    return found


_BY_NAME = _message_classes()
_ENCODERS: dict[type, Encoder] = {}
_DECODERS: dict[str, Decoder] = {}
for _name, _cls in _BY_NAME.items():
    _enc, _dec = _struct(_cls)
    _ENCODERS[_cls] = _enc
    _DECODERS[_name] = _dec


def encode_message(msg: Any) -> list[Any]:
    """``msg`` (a message dataclass) as a JSON-ready list headed by its class name."""
    enc = _ENCODERS.get(type(msg))
    if enc is None:
        raise TypeError(f"not a venue message: {type(msg).__name__}")
    return [type(msg).__name__, *enc(msg)]


def decode_message(value: Any) -> Any:
    """The message for a list made by :func:`encode_message`; :class:`CodecError` otherwise."""
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise CodecError(f"not a message: {value!r}")
    dec = _DECODERS.get(value[0])
    if dec is None:
        raise CodecError(f"unknown message type {value[0]!r}")
    try:
        return dec(value[1:])
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"{value[0]}: {exc}") from exc
