"""``Long``: book sequences, Kafka offsets, ledger sequence numbers and sign counts pass 32 bits;
they travel as exact JSON numbers up to 2^53 - 1 and never as rounded ones."""

from __future__ import annotations

import json

import strawberry

from api.graphql.export import SCHEMA_FILE
from api.graphql.limits import EXTENSIONS, UNEXPECTED
from api.graphql.scalars import MAX_SAFE_INTEGER, SCALARS, Long

PAST_INT32 = 2**40 + 3


@strawberry.type
class Query:
    @strawberry.field
    def offset(self, at: Long) -> Long:
        return at

    @strawberry.field
    def too_large(self) -> Long:
        return Long(MAX_SAFE_INTEGER + 1)


schema = strawberry.Schema(
    query=Query, config=strawberry.schema.config.StrawberryConfig(scalar_map=SCALARS), extensions=EXTENSIONS
)


async def test_a_long_past_32_bits_travels_as_an_exact_json_number() -> None:
    result = await schema.execute("query($at: Long!) { offset(at: $at) }", variable_values={"at": PAST_INT32})
    assert result.errors is None
    assert json.dumps(result.data) == f'{{"offset": {PAST_INT32}}}'
    result = await schema.execute(f"{{ offset(at: {MAX_SAFE_INTEGER}) }}")
    assert result.data == {"offset": MAX_SAFE_INTEGER}


async def test_a_long_a_client_cannot_hold_exactly_is_refused_not_rounded() -> None:
    for bad in (MAX_SAFE_INTEGER + 1, 1.5, "12", True):
        result = await schema.execute("query($at: Long!) { offset(at: $at) }", variable_values={"at": bad})
        assert result.errors, bad
        assert "Long" in result.errors[0].message, result.errors[0].message
    result = await schema.execute("{ tooLarge }")
    assert result.errors is not None and result.data is None
    assert result.errors[0].formatted["extensions"] == {"code": UNEXPECTED}


def test_the_api_declares_its_64_bit_counters_long() -> None:
    sdl = SCHEMA_FILE.read_text()
    for field in ("sequence", "previousSequence", "offset", "signCount", "seq"):
        declared = {
            line.split(":", 1)[1].strip() for line in sdl.splitlines() if line.strip().startswith(f"{field}:")
        }
        assert declared and declared <= {"Long", "Long!"}, (field, declared)
