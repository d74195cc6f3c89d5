"""Positions and account values for the gateway's clients: the requests that read them and the
subscriptions the venue's position and account events are pushed to.

Only the gateway's own accounts are served: a sub-account's (the paper Schwab API's) positions
and values are another broker's business.
"""

from __future__ import annotations

from typing import Protocol

from paper.tws import incoming as im
from paper.tws import outgoing
from paper.tws.ports import Client
from paper.venue import messages as vm
from paper.venue.client import VenueClient


class Upstream(Protocol):
    """The gateway's hub, read at each call: a venue that comes back is a new connection, and
    its accounts may be others."""

    venue: VenueClient
    accounts: tuple[str, ...]

    def contract_for(self, symbol: str, con_id: int) -> vm.ContractInfo: ...


class AccountFeeds:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.position_subs: set[Client] = set()
        self.account_subs: set[Client] = set()
        self.account_multi_subs: dict[tuple[Client, int], str] = {}

    def drop_session(self, session: Client) -> None:
        self.position_subs.discard(session)
        self.account_subs.discard(session)
        for key in [k for k in self.account_multi_subs if k[0] is session]:
            del self.account_multi_subs[key]

    # ------------------------------------------------------------------ venue events

    def on_position(self, p: vm.Position) -> None:
        if p.account not in self.upstream.accounts:
            return
        contract = self.upstream.contract_for(p.symbol, p.con_id)
        if self.position_subs:
            frame = outgoing.position(p, contract)
            for session in self.position_subs:
                session.send(frame)
        if self.account_subs:
            frame = outgoing.update_portfolio(p, contract)
            for session in self.account_subs:
                session.send(frame)

    def on_account(self, snap: vm.AccountSnapshot) -> None:
        if snap.account not in self.upstream.accounts:
            return
        if self.account_subs:
            frames = _account_value_frames(snap)
            for session in self.account_subs:
                session.send_many(frames)
        for (session, req_id), account in self.account_multi_subs.items():
            if account in ("", snap.account):
                session.send_many(
                    outgoing.account_update_multi(req_id, snap.account, v.key, v.value, v.currency)
                    for v in snap.values
                )

    # ------------------------------------------------------------------ client requests

    async def positions(self, session: Client, msg: im.ReqPositions) -> None:
        self.position_subs.add(session)
        positions = await self.upstream.venue.positions()
        frames = [outgoing.position(p, self.upstream.contract_for(p.symbol, p.con_id)) for p in positions]
        frames.append(outgoing.position_end())
        session.send_many(frames)

    def cancel_positions(self, session: Client, msg: im.CancelPositions) -> None:
        self.position_subs.discard(session)

    async def positions_multi(self, session: Client, msg: im.ReqPositionsMulti) -> None:
        positions = await self.upstream.venue.positions(msg.account)
        frames = [
            outgoing.position_multi(msg.req_id, p, self.upstream.contract_for(p.symbol, p.con_id))
            for p in positions
        ]
        frames.append(outgoing.position_multi_end(msg.req_id))
        session.send_many(frames)

    async def account_updates(self, session: Client, msg: im.ReqAccountUpdates) -> None:
        if not msg.subscribe:
            self.account_subs.discard(session)
            return
        account = msg.account or self.upstream.accounts[0]
        snap = await self.upstream.venue.account_values(account)
        positions = await self.upstream.venue.positions(account)
        frames = _account_value_frames(snap)
        frames += [
            outgoing.update_portfolio(p, self.upstream.contract_for(p.symbol, p.con_id)) for p in positions
        ]
        frames.append(outgoing.update_account_time(snap.time_ns))
        frames.append(outgoing.account_download_end(account))
        session.send_many(frames)
        self.account_subs.add(session)

    async def account_updates_multi(self, session: Client, msg: im.ReqAccountUpdatesMulti) -> None:
        snap = await self.upstream.venue.account_values(msg.account)
        frames = [
            outgoing.account_update_multi(msg.req_id, snap.account, v.key, v.value, v.currency)
            for v in snap.values
        ]
        frames.append(outgoing.account_update_multi_end(msg.req_id))
        session.send_many(frames)
        self.account_multi_subs[(session, msg.req_id)] = msg.account

    def cancel_account_updates_multi(self, session: Client, msg: im.CancelAccountUpdatesMulti) -> None:
        self.account_multi_subs.pop((session, msg.req_id), None)

    async def account_summary(self, session: Client, msg: im.ReqAccountSummary) -> None:
        tags = {t.strip() for t in msg.tags.split(",") if t.strip()}
        snap = await self.upstream.venue.account_values()
        frames = [
            outgoing.account_summary(msg.req_id, snap.account, v.key, v.value, v.currency)
            for v in snap.values
            if v.key in tags and v.currency != "BASE"
        ]
        frames.append(outgoing.account_summary_end(msg.req_id))
        session.send_many(frames)


def _account_value_frames(snap: vm.AccountSnapshot) -> list[bytes]:
    return [outgoing.update_account_value(v.key, v.value, v.currency, snap.account) for v in snap.values]
