"""The exported schema file is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLObjectType

from api.graphql.export import SCHEMA_FILE, main, sdl
from api.graphql.schema import schema


def test_the_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == sdl(), "api/schema.graphql is stale: run python -m api.graphql.export"


def test_the_export_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { nothing: Int }\n")
    assert main([str(stale), "--check"]) == 1
    assert main([str(stale)]) == 0
    assert main([str(stale), "--check"]) == 0


def test_decimals_travel_as_strings_and_lists_page_by_cursor() -> None:
    text = sdl()
    assert "scalar Decimal" in text
    assert "Float" not in text, "no binary float anywhere in the schema"
    assert "orders(first: Int = null, after: String = null" in text
    arguments = {
        name
        for graphql_type in schema._schema.type_map.values()
        if isinstance(graphql_type, GraphQLObjectType)
        for field in graphql_type.fields.values()
        for name in field.args
    }
    assert "offset" not in arguments and "skip" not in arguments
