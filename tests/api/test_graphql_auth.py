"""The ceremonies over GraphQL against the running API: enrol a passkey, sign in (the cookie),
arm, see it in `me`, sign out; refusals answer as WebAuthnRefused."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from api import webauthn_results as r
from ledger.api_tokens import issue_token
from tests.api.conftest import GraphQLApi
from tests.fixtures.identity import new_trader, security_events_of

BEGIN_REGISTRATION = """mutation($t: String!) { beginRegistration(enrolmentToken: $t) {
  __typename ... on CeremonyChallenge { challengeId optionsJson expiresAt }
  ... on WebAuthnRefused { reason detail } } }"""
FINISH_REGISTRATION = """mutation($t: String!, $c: String!, $cred: String!) {
  finishRegistration(enrolmentToken: $t, challengeId: $c, credential: $cred) {
  __typename ... on Authenticator { credentialId synced signCount }
  ... on WebAuthnRefused { reason detail } } }"""
BEGIN_LOGIN = """mutation { beginLogin { __typename ... on CeremonyChallenge { challengeId optionsJson }
  ... on WebAuthnRefused { reason detail } } }"""
FINISH_LOGIN = """mutation($c: String!, $cred: String!) { finishLogin(challengeId: $c, credential: $cred) {
  __typename ... on SignedIn { trader role accounts stepUpEveryOrder }
  ... on WebAuthnRefused { reason detail } } }"""
BEGIN_ARMING = """mutation($l: ArmingLimitsInput) { beginArming(limits: $l) {
  __typename ... on CeremonyChallenge { challengeId optionsJson }
  ... on WebAuthnRefused { reason detail } } }"""
FINISH_ARMING = """mutation($c: String!, $cred: String!) { finishArming(challengeId: $c, credential: $cred) {
  __typename ... on Grant { expiresAt symbols maxQuantity maxNotional credentialId }
  ... on WebAuthnRefused { reason detail } } }"""
ME = """{ me { name kind role accounts authenticators { credentialId synced signCount }
  grant { credentialId symbols maxQuantity maxNotional } } }"""


async def _cookie_session(graphql_api: GraphQLApi, authenticator: Any) -> tuple[str, str]:
    """Sign in: the Set-Cookie header and the Cookie header to send back."""
    begin = (await graphql_api.query(BEGIN_LOGIN))["beginLogin"]
    response = await graphql_api.post(
        FINISH_LOGIN, {"c": begin["challengeId"], "cred": authenticator.get(begin["optionsJson"])}
    )
    assert response.json()["data"]["finishLogin"]["__typename"] == "SignedIn", response.text
    set_cookie = response.headers["set-cookie"]
    return set_cookie, set_cookie.split(";", 1)[0]


async def test_enrol_sign_in_arm_and_sign_out_over_graphql(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool, accounts=("DU1234567",))
    trader.authenticator.origin = graphql_api.origin
    begin = (await graphql_api.query(BEGIN_REGISTRATION, {"t": trader.enrolment_token}))["beginRegistration"]
    assert begin["__typename"] == "CeremonyChallenge"
    credential = trader.authenticator.create(begin["optionsJson"])
    done = (
        await graphql_api.query(
            FINISH_REGISTRATION, {"t": trader.enrolment_token, "c": begin["challengeId"], "cred": credential}
        )
    )["finishRegistration"]
    assert done["__typename"] == "Authenticator" and done["synced"] is False and done["signCount"] == 1

    set_cookie, cookie = await _cookie_session(graphql_api, trader.authenticator)
    attributes = {a.strip().lower() for a in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert cookie.startswith("floor_session=")

    me = (await graphql_api.query(ME, cookie=cookie))["me"]
    assert (me["name"], me["kind"], me["role"], me["accounts"]) == (
        trader.name,
        "trader",
        "trader",
        ["DU1234567"],
    )
    assert me["authenticators"] == [{"credentialId": done["credentialId"], "synced": False, "signCount": 2}]
    assert me["grant"] is None

    arming = (
        await graphql_api.query(
            BEGIN_ARMING,
            {"l": {"symbols": ["aapl"], "maxQuantity": 100, "maxNotional": "25000.50"}},
            cookie=cookie,
        )
    )["beginArming"]
    assert arming["__typename"] == "CeremonyChallenge"
    answer = trader.authenticator.get(arming["optionsJson"])
    armed = (
        await graphql_api.query(FINISH_ARMING, {"c": arming["challengeId"], "cred": answer}, cookie=cookie)
    )["finishArming"]
    assert armed["__typename"] == "Grant" and armed["credentialId"] == done["credentialId"]
    assert (armed["symbols"], armed["maxQuantity"], armed["maxNotional"]) == (["AAPL"], 100, "25000.50")
    grant = (await graphql_api.query(ME, cookie=cookie))["me"]["grant"]
    assert grant == {k: armed[k] for k in ("credentialId", "symbols", "maxQuantity", "maxNotional")}

    # The same answer again is refused by name.
    replayed = (
        await graphql_api.query(FINISH_ARMING, {"c": arming["challengeId"], "cred": answer}, cookie=cookie)
    )["finishArming"]
    assert (replayed["__typename"], replayed["reason"]) == ("WebAuthnRefused", r.CHALLENGE_UNKNOWN)

    disarmed = await graphql_api.query("mutation { disarm { disarmed } }", cookie=cookie)
    assert disarmed["disarm"]["disarmed"] is True
    assert (await graphql_api.query(ME, cookie=cookie))["me"]["grant"] is None

    signed_out = await graphql_api.post("mutation { logout { signedOut } }", cookie=cookie)
    assert signed_out.json()["data"]["logout"]["signedOut"] is True
    assert "floor_session=" in signed_out.headers["set-cookie"]
    assert await graphql_api.refusal(ME, cookie=cookie) == "auth.unauthenticated"


async def test_refused_login_sets_no_cookie_and_records_the_clients_address(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool, ledger_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    trader.authenticator.origin = graphql_api.origin
    begin = (await graphql_api.query(BEGIN_REGISTRATION, {"t": trader.enrolment_token}))["beginRegistration"]
    await graphql_api.query(
        FINISH_REGISTRATION,
        {
            "t": trader.enrolment_token,
            "c": begin["challengeId"],
            "cred": trader.authenticator.create(begin["optionsJson"]),
        },
    )
    trader.authenticator.origin = "http://localhost:9999"
    login = (await graphql_api.query(BEGIN_LOGIN))["beginLogin"]
    response = await graphql_api.post(
        FINISH_LOGIN, {"c": login["challengeId"], "cred": trader.authenticator.get(login["optionsJson"])}
    )
    assert response.json()["data"]["finishLogin"]["reason"] == r.ORIGIN_MISMATCH
    assert "set-cookie" not in response.headers
    [event] = await security_events_of(ledger_pool, trader.name)
    assert (event["reason"], event["remote_addr"]) == (r.ORIGIN_MISMATCH, "127.0.0.1")


async def test_used_enrolment_link_is_refused_over_graphql(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool
) -> None:
    refused = (await graphql_api.query(BEGIN_REGISTRATION, {"t": "no-such-token"}))["beginRegistration"]
    assert (refused["__typename"], refused["reason"]) == ("WebAuthnRefused", r.ENROLMENT_INVALID)


async def test_a_program_cannot_arm(graphql_api: GraphQLApi, cli_pool: asyncpg.Pool) -> None:
    _, token = await issue_token(cli_pool, f"bot-{uuid.uuid4().hex[:8]}", "ops")
    refused = (await graphql_api.query(BEGIN_ARMING, token=token))["beginArming"]
    assert (refused["__typename"], refused["reason"]) == ("WebAuthnRefused", "auth.trader_session_required")
    me = (await graphql_api.query(ME, token=token))["me"]
    assert me["kind"] == "token" and me["authenticators"] == [] and me["grant"] is None
