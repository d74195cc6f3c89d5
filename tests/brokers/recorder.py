"""Collects broker events and lets a test await the first one matching a predicate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from brokers.base import BrokerEvent

E = TypeVar("E")


class Recorder:
    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: BrokerEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[E], **match: Any) -> list[E]:
        return [
            e for e in self.events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
        ]  # fmt: skip

    async def next(
        self,
        kind: type[E],
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for the whole wait
        where: Callable[[E], bool] | None = None,
        **match: Any,
    ) -> E:
        """The first recorded event of ``kind`` with ``match`` fields (and ``where``), awaiting
        new events until one arrives."""

        async def find() -> E:
            while True:
                for e in self.of(kind, **match):
                    if where is None or where(e):
                        return e
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {kind.__name__} {match} within {timeout} s; events: {self.events[-15:]!r}"
            ) from None
