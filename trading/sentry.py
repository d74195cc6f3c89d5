"""Sentry: may this signed command enter the floor at all?

One pure decision shared by the API door and the hot path (Kafka is not a trust boundary, so
both ask the same question). The checks run in a fixed order and the first failure names the
refusal:

1. ``sentry.no_signature``        the envelope carries no signature
2. ``sentry.unknown_key``         no registered key has the envelope's key id
3. ``sentry.revoked_key``         the key was revoked
4. ``sentry.bad_signature``       the signature does not verify over the canonical bytes
5. ``sentry.signer_mismatch``     the key belongs to another agent than the command names
6. ``sentry.trader_unauthorised`` a trader's key signed a command without the trader's own
                                  WebAuthn authorization (:func:`trader_problem`), or of a kind
                                  a trader may not sign, or authorised by the sign-in assertion
                                  where only arming or a step-up may authorise, or by a
                                  step-up whose ``order_hash`` is not the hash of the
                                  command's own terms (:mod:`trading.step_up`); or another
                                  key's command carries one
7. ``sentry.manual_order_not_allowed``
                                  an ``enter`` without an edge (a manual order, sent as is,
                                  never sized) signed by a key that is not a trader's
                                  (:func:`manual_order_problem`): every other key's order is
                                  sized by the Kelly sizer
8. ``sentry.not_operator``        an operator's command (``breaker_trip``, ``breaker_arm``)
                                  signed by a key that is neither an operator's nor an
                                  authorised trader's
9. ``sentry.account_not_allowed`` the agent may not trade the command's account (a trader's
                                  breaker command is floor-wide by nature: its ``*`` need not
                                  be among the trader's accounts)
10. ``sentry.replayed_nonce``     this agent already used this nonce
11. ``sentry.replayed_signature`` this exact signature was already presented
12. ``sentry.stale``              ``issued_at`` is outside the acceptance window

Traders: each trader has a key of its own (agent ``trader.<name>``, role ``trader``) that the
API signs the trader's commands with, and only after the trader's WebAuthn checks passed (the
arming grant, or a step-up for this very order); the signed command carries that evidence in
its ``authorization``. So a trader key without one was used past those checks, and an
authorization under any other key is a claim nobody checked: both are refused. Taking risk off
needs no arming: a cancel, a cancel-all or the breaker's trip may carry the sign-in assertion
that opened the trader's session (:data:`SIGN_IN_KINDS`); anything that takes risk or lets it
back in (an order, re-arming the breaker) needs the arming grant's assertion or a step-up.

Signature checks come before the window and replay checks so that an attacker learns nothing
about which nonces are taken without holding a valid key.

Replay comes before staleness because an envelope presented again is first of all a copy:
Kafka redelivering it, or a publisher retrying the very same signed command (an iceberg slice
retried by its activity), however long after the first delivery. Named stale, such a copy
would read as a refusal of the order the first delivery created. The in-memory guard forgets
entries older than the window, so the caller asks the ledger too, for every refusal in
:data:`REDELIVERY_SUSPECTS` (and only then, so the common path does no lookup).

Only the window needs a clock; it is passed in. The replay sets are held by
:class:`ReplayGuard`, which forgets entries once they are older than the window: a command that
old is refused as stale before its nonce is looked at, so remembering it would buy nothing. The
ledger's unique indexes on ``signature_hash`` and ``(agent, nonce)`` remain the last guard.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trading.authorization import Ceremony, trader_agent_id
from trading.commands import OPERATOR_KINDS, Command, CommandKind
from trading.security_events import Severity
from trading.signing import (
    EnvelopeInvalid,
    SignatureInvalid,
    SignedCommand,
    public_key_from_bytes,
    verify_bytes,
)
from trading.step_up import command_order_hash

NO_SIGNATURE = "sentry.no_signature"
UNKNOWN_KEY = "sentry.unknown_key"
REVOKED_KEY = "sentry.revoked_key"
BAD_SIGNATURE = "sentry.bad_signature"
SIGNER_MISMATCH = "sentry.signer_mismatch"
TRADER_UNAUTHORISED = "sentry.trader_unauthorised"
MANUAL_ORDER_NOT_ALLOWED = "sentry.manual_order_not_allowed"
NOT_OPERATOR = "sentry.not_operator"
ACCOUNT_NOT_ALLOWED = "sentry.account_not_allowed"
STALE = "sentry.stale"
REPLAYED_NONCE = "sentry.replayed_nonce"
REPLAYED_SIGNATURE = "sentry.replayed_signature"
REPLAYED_COMMAND_ID = "sentry.replayed_command_id"
"""Only the ledger catches this one (its unique index on genuine commands' ids): a command
signed afresh under an id a genuine command already used."""

ANY_ACCOUNT = "*"
"""In :attr:`RegisteredKey.accounts`: the agent may trade every account."""
ROLE_AGENT = "agent"
ROLE_OPERATOR = "operator"
ROLE_TRADER = "trader"
"""The key registry's roles (``agent_keys.role``, :mod:`ledger.keys`) the sentry tells apart."""

TRADER_KINDS = frozenset(
    {
        CommandKind.ENTER,
        CommandKind.EXIT,
        CommandKind.CANCEL,
        CommandKind.CANCEL_ALL,
        CommandKind.BREAKER_TRIP,
        CommandKind.BREAKER_ARM,
    }
)
"""What a trader's key may sign (always with the trader's :class:`~trading.authorization.Authorization`)."""

SIGN_IN_KINDS = frozenset({CommandKind.CANCEL, CommandKind.CANCEL_ALL, CommandKind.BREAKER_TRIP})
"""What the sign-in assertion alone (ceremony ``session``) authorises: taking risk off, which a
trader must be able to do without arming first."""

DEFAULT_MAX_AGE = timedelta(seconds=30)
DEFAULT_MAX_SKEW = timedelta(seconds=5)


SEVERITY: Mapping[str, Severity] = {
    NO_SIGNATURE: Severity.CRITICAL,
    UNKNOWN_KEY: Severity.CRITICAL,
    REVOKED_KEY: Severity.CRITICAL,
    BAD_SIGNATURE: Severity.CRITICAL,
    SIGNER_MISMATCH: Severity.CRITICAL,
    # A trader's key used past the WebAuthn checks (or a trader's name under another key): the
    # key that only the API should use, used by something else.
    TRADER_UNAUTHORISED: Severity.CRITICAL,
    # A genuine key asking to skip the sizer: its owner's code, not necessarily an attack.
    MANUAL_ORDER_NOT_ALLOWED: Severity.ERROR,
    # A genuine key reaching for the operator's authority (the breaker) it was never given.
    NOT_OPERATOR: Severity.CRITICAL,
    ACCOUNT_NOT_ALLOWED: Severity.ERROR,
    # Usually a slow or skewed clock, not an attack; a replay inside the window is the attack.
    STALE: Severity.WARNING,
    REPLAYED_NONCE: Severity.CRITICAL,
    REPLAYED_SIGNATURE: Severity.CRITICAL,
    # Usually an agent retrying with a new signature and nonce under the same id, not an attack.
    REPLAYED_COMMAND_ID: Severity.ERROR,
}

REASONS: tuple[str, ...] = tuple(SEVERITY)

UNATTRIBUTED = frozenset({NO_SIGNATURE, UNKNOWN_KEY, BAD_SIGNATURE})
"""Refusals of an envelope no registered key signed: it proves nothing about any key holder,
and anyone can make any number of them."""

REDELIVERY_SUSPECTS = frozenset({REPLAYED_SIGNATURE, REPLAYED_NONCE, STALE})
"""Refusals that an exact copy of an envelope already in the ledger can draw (the guard may
have forgotten it, leaving only its age). On one of these the caller asks the ledger whether
it holds this very signature; if it does, the copy is a duplicate delivery, not a refusal."""


@dataclass(frozen=True)
class RegisteredKey:
    """One entry of the key registry as the sentry needs it."""

    key_id: str
    agent_id: str
    public_key: bytes
    """Raw 32-byte Ed25519 public key."""
    accounts: frozenset[str]
    """Accounts the agent may trade; :data:`ANY_ACCOUNT` allows all."""
    revoked: bool = False
    role: str = ROLE_AGENT
    """The registry's role: only :data:`ROLE_OPERATOR` may sign an operator's command."""

    def allows(self, account: str) -> bool:
        return ANY_ACCOUNT in self.accounts or account in self.accounts


@dataclass(frozen=True)
class Window:
    """``issued_at`` must lie in ``[now - max_age, now + max_skew]``."""

    max_age: timedelta = DEFAULT_MAX_AGE
    max_skew: timedelta = DEFAULT_MAX_SKEW

    def contains(self, issued_at: datetime, now: datetime) -> bool:
        return now - self.max_age <= issued_at <= now + self.max_skew


@dataclass(frozen=True)
class Verdict:
    """``reason`` is None when the command may enter; otherwise a name from :data:`REASONS`."""

    reason: str | None
    agent_id: str | None = None
    """The registered key's agent, when the key is known."""
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.reason is None

    @property
    def severity(self) -> Severity | None:
        return None if self.reason is None else SEVERITY[self.reason]


ACCEPTED = Verdict(None)


@dataclass
class ReplayGuard:
    """Nonces and signature hashes seen within the window, in memory.

    Warm it from the ledger at start (:meth:`remember` every entry issued within the window),
    then :meth:`remember` each command the sentry lets through, before anything else happens
    to it, so a duplicate arriving a microsecond later is refused.
    """

    window: Window = field(default_factory=Window)
    _nonces: set[tuple[str, str]] = field(default_factory=set)
    _signatures: set[str] = field(default_factory=set)
    _expiry: list[tuple[datetime, str, str, str]] = field(default_factory=list)

    def seen_nonce(self, agent_id: str, nonce: str) -> bool:
        return (agent_id, nonce) in self._nonces

    def seen_signature(self, signature_hash: str) -> bool:
        return signature_hash in self._signatures

    def remember(self, agent_id: str, nonce: str, signature_hash: str, issued_at: datetime) -> None:
        self._nonces.add((agent_id, nonce))
        self._signatures.add(signature_hash)
        heapq.heappush(self._expiry, (issued_at, agent_id, nonce, signature_hash))

    def release(self, agent_id: str, nonce: str, signature_hash: str) -> None:
        """Forget a remembered command that was never acted on (it could not be published), so
        the sender's retry of the very same command is not taken for a replay."""
        self._nonces.discard((agent_id, nonce))
        self._signatures.discard(signature_hash)

    def forget_older_than_window(self, now: datetime) -> int:
        """Drop entries a stale check would refuse anyway; return how many went."""
        horizon = now - self.window.max_age
        dropped = 0
        while self._expiry and self._expiry[0][0] < horizon:
            _, agent_id, nonce, sig = heapq.heappop(self._expiry)
            self._nonces.discard((agent_id, nonce))
            self._signatures.discard(sig)
            dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._nonces)


def check(
    envelope: SignedCommand | None,
    key: RegisteredKey | None,
    replay: ReplayGuard,
    now: datetime,
    window: Window | None = None,
) -> Verdict:
    """Decide whether ``envelope`` may enter. Pure: nothing is remembered here.

    ``envelope`` is None when the caller received a command with no signature at all; ``key``
    is the registry's entry for ``envelope.signer`` (None when there is none).
    """
    window = window or replay.window
    if envelope is None or not envelope.signature:
        return Verdict(NO_SIGNATURE, detail="the command carries no signature")
    if key is None or key.key_id != envelope.signer:
        return Verdict(UNKNOWN_KEY, detail=f"no registered key {envelope.signer}")
    # The signature before revocation: a revoked key's id on bytes it never signed is a forgery
    # like any other, not something its holder did.
    try:
        verify_bytes(public_key_from_bytes(key.public_key), envelope.canonical, envelope.signature)
    except SignatureInvalid:
        return Verdict(BAD_SIGNATURE, key.agent_id, f"signature does not verify with key {key.key_id}")
    if key.revoked:
        return Verdict(REVOKED_KEY, key.agent_id, f"key {key.key_id} was revoked")
    command = envelope.command
    if command.agent_id != key.agent_id:
        return Verdict(
            SIGNER_MISMATCH, key.agent_id, f"key of {key.agent_id} signed a command of {command.agent_id}"
        )
    if (problem := trader_problem(command, key.role, key.agent_id)) is not None:
        return Verdict(TRADER_UNAUTHORISED, key.agent_id, problem)
    if (problem := manual_order_problem(command, key.role)) is not None:
        return Verdict(MANUAL_ORDER_NOT_ALLOWED, key.agent_id, problem)
    if command.kind in OPERATOR_KINDS and key.role not in (ROLE_OPERATOR, ROLE_TRADER):
        return Verdict(
            NOT_OPERATOR,
            key.agent_id,
            f"{command.kind.value} needs a key with the operator role (or an authorised trader's);"
            f" {key.agent_id}'s is {key.role!r}",
        )
    floor_wide_by_trader = key.role == ROLE_TRADER and command.kind in OPERATOR_KINDS
    if not floor_wide_by_trader and not key.allows(command.account):
        return Verdict(ACCOUNT_NOT_ALLOWED, key.agent_id, f"{key.agent_id} may not trade {command.account}")
    if replay.seen_nonce(command.agent_id, command.nonce):
        return Verdict(REPLAYED_NONCE, key.agent_id, f"nonce {command.nonce} already used")
    if replay.seen_signature(envelope.signature_hash):
        return Verdict(REPLAYED_SIGNATURE, key.agent_id, "signature already presented")
    if not window.contains(command.issued_at, now):
        return Verdict(STALE, key.agent_id, f"issued_at {command.issued_at.isoformat()} outside the window")
    return Verdict(None, key.agent_id)


def trader_problem(command: Command, role: str, agent_id: str) -> str | None:
    """Why ``command`` may not be signed by a key of ``role`` held by ``agent_id`` as far as
    traders go (None: it may). A trader's key signs only :data:`TRADER_KINDS`, each with an
    authorization naming that very trader (the sign-in's only on :data:`SIGN_IN_KINDS`); no
    other key's command carries an authorization.
    Pure, and shared by everything that reads a trader's command back (the breaker's state at
    start-up, ``floor ledger verify``)."""
    authorization = command.authorization
    if role != ROLE_TRADER:
        if authorization is None:
            return None
        return (
            f"an authorization by trader {authorization.trader} signed with {agent_id}'s {role} key:"
            " only the trader's own key carries one"
        )
    if command.kind not in TRADER_KINDS:
        return f"a trader's key may not sign a {command.kind.value} command"
    if authorization is None:
        return f"{agent_id}'s key signs only with the trader's WebAuthn authorization; the command has none"
    if agent_id != trader_agent_id(authorization.trader):
        return f"authorised by trader {authorization.trader}, signed with {agent_id}'s key"
    if authorization.ceremony is Ceremony.SESSION and command.kind not in SIGN_IN_KINDS:
        return (
            f"a {command.kind.value} command authorised only by the sign-in assertion: it needs"
            " the arming grant's assertion or a step-up (sign-in authorises cancels and the trip)"
        )
    if authorization.ceremony is Ceremony.STEP_UP:
        # The step-up's assertion was over the hash the API computed; the command must be that
        # very order, or an assertion for one order could authorise another.
        signed_terms = command_order_hash(command)
        if signed_terms is None:
            return f"a step-up authorises one order's terms; this {command.kind.value} command has none"
        if signed_terms != authorization.order_hash:
            return (
                f"the step-up authorised order {authorization.order_hash}, but the command's own terms"
                f" hash to {signed_terms}"
            )
    return None


def manual_order_problem(command: Command, role: str) -> str | None:
    """Why ``command`` may not be a manual order under a key of ``role`` (None: it may). An
    enter without an edge is sent with exactly its quantity, never sized: only a trader, who
    chose that quantity behind the WebAuthn checks, may send one. Pure, and shared like
    :func:`trader_problem`."""
    if command.kind is CommandKind.ENTER and command.edge is None and role != ROLE_TRADER:
        return (
            f"an enter without an edge is a trader's manual order; a {role} key's order needs an edge"
            " (p, b, stop_price) for the sizer"
        )
    return None


def authority_problem(command: Command, role: str, agent_id: str) -> str | None:
    """:func:`trader_problem`, then :func:`manual_order_problem`: what a key of ``role`` held by
    ``agent_id`` may not have signed, for readers of the ledger that name no reason."""
    return trader_problem(command, role, agent_id) or manual_order_problem(command, role)


def admit(
    envelope: SignedCommand,
    key: RegisteredKey | None,
    replay: ReplayGuard,
    now: datetime,
) -> Verdict:
    """:func:`check`, and on acceptance :meth:`ReplayGuard.remember` the command at once."""
    verdict = check(envelope, key, replay, now)
    if verdict.accepted:
        replay.remember(
            envelope.command.agent_id,
            envelope.command.nonce,
            envelope.signature_hash,
            envelope.command.issued_at,
        )
    return verdict


class Refused(Exception):
    """An envelope refused before it could even be decoded (no or malformed signature/signer)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"{verdict.reason}: {verdict.detail}")
        self.verdict = verdict


def read_envelope(data: Any) -> SignedCommand:
    """Decode a wire envelope (already parsed JSON), telling security failures from bad input.

    Raises :class:`Refused` for a missing or empty signature (``sentry.no_signature``), a
    signature that is not 64 bytes of hex (``sentry.bad_signature``) or a missing/malformed
    signer (``sentry.unknown_key``): these are refusals, not schema errors, because a forger
    produces exactly them. Anything else wrong raises :class:`~trading.signing.EnvelopeInvalid`
    or :class:`~trading.commands.CommandInvalid` naming the field.
    """
    if not isinstance(data, dict):
        raise EnvelopeInvalid("envelope", "must be a JSON object")
    signature = data.get("signature")
    if signature is None or signature == "":
        raise Refused(Verdict(NO_SIGNATURE, detail="the command carries no signature"))
    try:
        return SignedCommand.from_wire_dict(data)
    except EnvelopeInvalid as exc:
        if exc.field == "signature":
            raise Refused(Verdict(BAD_SIGNATURE, detail=f"malformed signature: {exc.reason}")) from None
        if exc.field == "signer":
            raise Refused(Verdict(UNKNOWN_KEY, detail=f"malformed signer: {exc.reason}")) from None
        raise
