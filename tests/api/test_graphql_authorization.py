"""An order's ledger entry shows who authorised it: whether the passkey was synced or
device-bound (looked up, batched, from the floor's passkeys), and whether anybody vouches for
the authorisation at all (an unauthenticated entry only claims it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from api.graphql.order_types import LedgerEntry
from api.webauthn_ceremonies import Ceremonies
from ledger.api_tokens import issue_token
from ledger.append import Decision, append_command
from ledger.order_entries import OrderEntry
from ledger.order_events import record_order_event
from tests.api.conftest import GraphQLApi
from tests.factories import authorization, enter_command, new_trader, order_event
from tests.fixtures.hotpath import register
from tests.fixtures.identity import enrol
from tests.fixtures.identity import new_trader as new_enrolled_trader
from tests.webauthn_authenticator import SoftwareAuthenticator
from trading.order_events import EventKind
from trading.sentry import ROLE_TRADER

ORDERS = """
query($account: String!) {
  orders(account: $account, first: 10) {
    edges { node { id ledgerEntry { authenticated authorization { authenticated credentialId synced } } } }
  }
}
"""


async def passkey(ceremonies: Ceremonies, cli_pool: asyncpg.Pool, *, backup_eligible: bool) -> str:
    trader = await new_enrolled_trader(
        cli_pool, authenticator=SoftwareAuthenticator(backup_eligible=backup_eligible)
    )
    return (await enrol(ceremonies, trader)).credential_id


async def test_each_orders_authorization_shows_a_synced_or_device_bound_passkey_or_none_known(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, cli_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    synced, device_bound = (
        await passkey(ceremonies, cli_pool, backup_eligible=True),
        await passkey(ceremonies, cli_pool, backup_eligible=False),
    )
    account = f"GA-{uuid.uuid4().hex[:8]}"
    trader = new_trader(accounts=frozenset({account}))
    # Registered like every key: the session's ledger is verified whole by other tests.
    await register(ledger_pool, trader, ROLE_TRADER)
    cases = {
        (synced, 7): True,
        (device_bound, 7): False,
        (device_bound, 0): True,  # a passkey that keeps no sign count cannot be told from a copy
        ("AAECAwQFBgcICQoLDA0ODxAREhM", 7): None,  # no such passkey here
    }
    expected: dict[str, dict[str, Any]] = {}
    for (credential_id, sign_count), answer in cases.items():
        evidence = authorization(trader.trader, sign_count=sign_count)
        evidence = type(evidence)(**{**vars(evidence), "credential_id": credential_id})
        command = enter_command(trader.agent_id, account=account, symbol="MSFT", authorization=evidence)
        await append_command(ledger_pool, trader.sign(command), decision=Decision.ACCEPTED)
        await record_order_event(
            ledger_pool,
            order_event(command.command_id, 0, EventKind.ACCEPTED, account=account, agent_id=trader.agent_id),
        )
        expected[command.command_id] = {
            "authenticated": True,
            "credentialId": credential_id,
            "synced": answer,
        }
    _, token = await issue_token(cli_pool, f"gql-auth-{uuid.uuid4().hex[:8]}", "read")
    edges = (await graphql_api.query(ORDERS, {"account": account}, token=token))["orders"]["edges"]
    shown = {e["node"]["id"]: e["node"]["ledgerEntry"]["authorization"] for e in edges}
    assert shown == expected


def test_the_authorization_of_an_unauthenticated_entry_is_marked_as_a_claim() -> None:
    # The ledger keeps a refused, unauthenticated payload apart from any order today; should one
    # ever be shown as an order's entry, what it says of its authorisation is only a claim.
    trader = new_trader(accounts=frozenset({"DU1"}))
    command = enter_command(
        trader.agent_id, account="DU1", symbol="MSFT", authorization=authorization(trader.trader)
    )
    signed = trader.sign(command)
    for authenticated in (True, False):
        entry = OrderEntry(
            seq=1,
            entry_hash="00" * 32,
            kind="enter",
            command_id=command.command_id,
            account="DU1",
            agent_id=trader.agent_id,
            signer=signed.signer,
            decision="rejected",
            reason="sentry.bad_signature",
            recorded_at=datetime.now(UTC),
            authenticated=authenticated,
            payload=signed.canonical,
        )
        shown = LedgerEntry.of(entry).authorization
        assert shown is not None and shown.trader == trader.trader
        assert shown.authenticated is authenticated
