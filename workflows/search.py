"""Custom search attributes the floor's workflows set, so ops can filter in Temporal UI
(``Symbol = "AAPL" AND State = "PartiallyFilled"``). Registered by
:func:`temporal.search_attributes.ensure_search_attributes`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

SYMBOL = SearchAttributeKey.for_keyword("Symbol")
ACCOUNT = SearchAttributeKey.for_keyword("Account")
AGENT = SearchAttributeKey.for_keyword("Agent")
STATE = SearchAttributeKey.for_keyword("State")

ALL_KEYS = (SYMBOL, ACCOUNT, AGENT, STATE)
