"""Where every process of the floor listens, from the environment with embedded defaults.

A service whose URL is set (``DATABASE_URL``, ``KAFKA_BOOTSTRAP``, ``TEMPORAL_ADDRESS``,
``IB_HOST``) is a real deployment: ``floor up`` does not start its embedded stand-in.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote, urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_FETCH_WAIT_MS = 5
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
EXTERNAL_FETCH_WAIT_MS = 100
EMBEDDED_API_FETCH_WAIT_MS = 20
EMBEDDED_DEPTH_INTERVAL_MS = 100
EXTERNAL_DEPTH_INTERVAL_MS = 20


class DatabaseUrlMissing(RuntimeError):
    """A process has no database URL of its own; the message says which variable to set."""


class FloorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOOR_", extra="ignore", populate_by_name=True)

    var_dir: Path = Path("var")
    host: str = "127.0.0.1"

    # Real deployments (no FLOOR_ prefix: these are the names operators already use).
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    kafka_bootstrap: str | None = Field(default=None, validation_alias="KAFKA_BOOTSTRAP")
    temporal_address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    ib_host: str | None = Field(default=None, validation_alias="IB_HOST")
    # Each runtime process's own database role (ledger/roles.py). Embedded: made by `floor up`,
    # passwords in var/db/. With DATABASE_URL (the schema owner, for migrations) each is required.
    hotpath_database_url: str | None = None
    api_database_url: str | None = None
    worker_database_url: str | None = None
    """The Temporal worker's and the bridge's."""
    cli_database_url: str | None = None
    """The `floor` commands' (keys, risk, ledger, first-run provisioning)."""
    brain_database_url: str | None = None
    """The demo brain's (`floor brain`, `floor up --demo`, `floor paper-loop`)."""

    # Embedded defaults.
    pg_port: int = 5433
    kafka_port: int = 9092
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_namespace: str = "default"
    api_port: int = 8000
    venue_port: int = 4100
    venue_control_port: int = 4101
    ib_port: int = Field(default=4002, validation_alias="IB_PORT")
    ib_standby_port: int = Field(default=4012, validation_alias="IB_STANDBY_PORT")
    ib_client_id: int = Field(default=1, validation_alias="IB_CLIENT_ID")
    ib_source_address: str | None = Field(default=None, validation_alias="IB_SOURCE_ADDRESS")
    ib_max_requests_per_s: int = Field(default=45, validation_alias="IB_MAX_REQUESTS_PER_S")
    ib_heartbeat_ms: int = Field(default=250, ge=10)
    """A heartbeat (``reqCurrentTime``) goes to a gateway this long after its last byte."""
    ib_answer_ms: int = Field(default=50, ge=5)
    """How long a heartbeat or an order may wait for a byte from the gateway before it counts as
    a missed answer (the paper gateway answers in about a millisecond; raise it for an IB
    Gateway far away)."""
    ib_heartbeat_misses: int = Field(default=3, ge=1)
    """Missed answers in a row after which the session is dead and the standby takes over."""
    paper_seed: int = 7
    paper_flow: Literal["agents", "zi"] = "agents"
    """The paper venue's order-flow model: ``agents`` (informed, momentum and noise traders and
    market makers who react to being hit: passive fills meet adverse selection) or ``zi`` (zero
    intelligence: symmetric flow with no impact, for tests that rely on its simplicity)."""
    paper_trusted_ips: str = "127.0.0.1"
    """Client addresses the paper gateways accept (comma-separated), like IB Gateway's Trusted IPs."""
    schwab_api_port: int = 4102
    """The paper Schwab Trader API emulator (``python -m paper.schwab_api``): REST, OAuth token
    endpoint and the streamer's WebSocket (``/ws``) on this one port, 127.0.0.1 only."""
    schwab_accounts: str = "SCHW0001"
    """Comma-separated Schwab account numbers the emulator serves, each in front of the paper
    venue's account; each has a stable ``hashValue`` (``GET /trader/v1/accounts/accountNumbers``)."""
    schwab_app_key: str = "paper-schwab-app-key"
    """The Schwab app's key (client id). The default is the paper emulator's; a real app's key
    comes from Schwab's developer portal."""
    schwab_app_secret: str = "paper-schwab-app-secret"
    """The Schwab app's secret. With this public default, `floor up` in paper gives the emulator
    and the hot path a secret it generates once (``var/schwab/app-secret``, mode 0600)."""
    schwab_order_rate_per_min: int = Field(default=120, ge=0)
    """Order requests (place, replace, cancel) per account per sliding minute the emulator
    accepts, the app's "order limit" at Schwab (120 is what schwab-py advises asking for);
    past it, 429. 0: no limit. The Schwab adapter paces its own order requests under it (beyond
    it they wait, cancels first, nearest the market first): set it to the app's limit."""
    hotpath_health_port: int = 8010
    hotpath_symbols: str = "AAPL,MSFT,NVDA,AMZN,JPM"
    """Comma-separated symbols the floor trades: the hot path streams them (L1 for risk, breaker
    and trailing stops; L2 for the HUD). An order in any other symbol is refused as
    ``unknown_symbol`` (HTTP 422 at the API door)."""
    market_collar_bps: Decimal = Field(default=Decimal(5), ge=0, lt=10_000)
    """How far past the touch (or a stop's trigger) the protective limit of a MKT, STP or TRAIL
    entry goes, in basis points of the price (trading.protective_limits): the entry is sent as
    a LMT or STP LMT at that limit and sized at it. Wider fills more of a thin book; narrower
    sizes closer to the touch. Exits are sent as signed."""
    broker_accounts: str = "DU1234567"
    """Comma-separated accounts the floor trades (the paper venue's by default), each
    ``ACCOUNT`` or ``ACCOUNT=BROKER`` with BROKER ``ibkr`` (the default) or ``schwab``, e.g.
    ``DU1234567,SCHW0001=schwab``: the broker an account's orders go to (:attr:`account_brokers`).
    Each account gets its broker connection's session changes for its BrokerSession workflow."""
    schwab_token_path: Path | None = None
    """The schwab-py token file (``creation_timestamp`` + ``token``) a person made once by logging
    in (``schwab-generate-token.py``); the floor refreshes its access token and rewrites it.
    Unset: ``<var>/schwab-token.json``."""
    schwab_base_url: str | None = None
    """Where Schwab's API is reached instead of ``https://api.schwabapi.com`` (the paper
    emulator, ``http://127.0.0.1:PORT``). Unset in production."""
    schwab_poll_s: float = Field(default=2.0, gt=0)
    """How often the Schwab adapter asks for its open orders' state, besides the account
    activity stream (the safety net for an event the stream did not carry)."""
    schwab_token_warn_age_s: int = Field(default=6 * 86400, ge=0)
    """Age of the token file's first login beyond which the adapter warns (``schwab.token_aging``):
    Schwab's refresh token lasts about seven days from the login, then a person must log in again."""
    worker_health_port: int = 8011
    """The Temporal worker's own port: ``GET /metrics`` (Prometheus text)."""
    bridge_health_port: int = 8012
    """The bridge's own port: ``GET /metrics`` (Prometheus text)."""
    api_rate_per_s: float = Field(default=50.0, gt=0)
    """Requests a second one client address may sustain at the API's command door (429 beyond)."""
    api_rate_burst: int = Field(default=100, ge=1)
    """Requests one client address may send at once after a quiet spell."""
    api_flood_window_s: float = Field(default=60.0, gt=0)
    """Security events of one reason from one address: the first few per window in full, the
    rest as one summary row with a count when the window closes."""
    kafka_flood_window_s: float = Field(default=60.0, gt=0)
    """The same for the hot path's and the bridge's security events about Kafka records, per
    partition and reason: a flood of forged records adds a few rows per window."""
    span_retention_hours: float = Field(default=72.0, gt=0)
    """How long finished trace spans stay in the span store (``floor trace``, the HUD's order
    timeline); the API prunes older ones every ten minutes."""
    api_subscription_queue: int = Field(default=1000, ge=1)
    """Order or security events one subscriber may fall behind by; one more ends its stream with
    ``resync.overflow`` (the API never waits for a slow client)."""
    api_ws_read_timeout_s: float = Field(default=5.0, gt=0)
    """How far behind a GraphQL WebSocket client may fall: a frame that waits this long for room,
    or a ping not answered within it, closes the connection (4410 ``resync.slow_consumer``) and
    ends its subscriptions."""
    api_ws_ping_interval_s: float = Field(default=10.0, gt=0)
    """How often the API pings each GraphQL WebSocket client (graphql-transport-ws ``ping``)."""
    api_state_poll_ms: int = Field(default=200, ge=10)
    """How often the API reads the breaker's state and new security events from Postgres for its
    subscribers (no trigger announces either)."""
    exits_modify_rate: int = Field(default=30, ge=0)
    """Trailing-stop modifications the Exit Manager writes a second at most (0: unpaced): its
    share of the adapter's 45 messages/s (``ib_max_requests_per_s``, under IB's 50), the rest
    left for orders and cancels. Beyond it each stop's newest level waits, nearest the market
    first (:mod:`trading.trailing_pacing`). Rate and burst together are what one second may
    hold: kept under the adapter's throttle with room for the floor's protective stops and the
    desks' orders, or ib_async queues the modify itself (written 0, unseen by the pacing)."""
    exits_modify_burst: int = Field(default=5, ge=1)
    """Modifications the Exit Manager may write at once before the rate applies."""
    exits_protect_entries: bool = True
    """Every filled entry's position gets a trailing stop at the broker for the shares the
    desk's own exits do not cover (:mod:`hotpath.protective_stops`). Off: only the desk's stops."""
    ledger_checkpoint_every: int = Field(default=100, ge=1)
    """The hot path signs a checkpoint of the ledger head each time the ledger has grown by this
    many entries (and when it stops)."""
    webauthn_rp_id: str = "localhost"
    """The WebAuthn relying party id: the host name traders open the HUD at. Never an IP address
    (browsers refuse one), so every link the floor prints uses ``localhost``."""
    webauthn_rp_name: str = "Execution Floor"
    webauthn_origin: str = ""
    """The one origin a ceremony's client data may name (scheme, host and port, exactly).
    Unset: ``http://<webauthn_rp_id>:<api_port>``, the address the API serves the pages at. Set,
    its host must be the rp id and its port the API's (:meth:`webauthn_origin_problem`)."""
    desk_book_max_age_ms: int = Field(default=2000, ge=1)
    staged_ttl_s: int = Field(default=300, ge=1)
    """How long a staged order may still be executed (or is listed) after it was staged."""
    """How old (by its venue timestamp) the order book may be for the desk to price an order
    against an arming grant's maximum notional; older, and an order its limit does not bound
    needs a step-up."""
    arming_ttl_s: int = Field(default=900, ge=1)
    """How long an arming grant lasts."""
    step_up_ttl_s: int = Field(default=120, ge=1)
    """How long a step-up challenge (one order's own ceremony) may be answered."""
    session_ttl_s: int = Field(default=43200, ge=1)
    """How long a trader's web session lasts after passkey sign-in."""
    enrolment_ttl_s: int = Field(default=86400, ge=1)
    """How long the one-time enrolment link of `floor traders add` stays usable."""
    open_login_challenges_max: int = Field(default=1000, ge=1)
    """How many passkey sign-in ceremonies may be begun and not yet answered (nor expired) at
    once: anyone may begin one, so beyond this a new one is refused until some expire."""
    supervisor_backoff_initial_s: float = Field(default=0.2, gt=0)
    """How long `floor up` waits before restarting a process that died; doubled for each restart
    of it within ``supervisor_restart_window_s``, up to ``supervisor_backoff_max_s``."""
    supervisor_backoff_max_s: float = Field(default=5.0, gt=0)
    supervisor_restart_limit: int = Field(default=5, ge=0)
    """Restarts of one process `floor up` makes within ``supervisor_restart_window_s``; it dying
    once more inside the window stops the floor (``supervisor.gave_up``)."""
    supervisor_restart_window_s: float = Field(default=60.0, gt=0)
    kafka_fetch_wait_ms: int | None = Field(default=None, ge=1)
    """How long the hot path's command fetch may wait at the broker. Unset: 5 ms against the
    embedded Tansu, which wakes no waiting fetch when a record arrives (see hotpath/main.py),
    and 100 ms against a Kafka named by ``KAFKA_BOOTSTRAP``, which does."""

    api_fetch_wait_ms: int | None = Field(default=None, ge=1)
    """How long the API's feeds (``market.depth``, ``orders.events``, ``market.trades``) may
    wait at the broker per fetch. Unset: 20 ms against the embedded Tansu, which answers a
    fetch only when its wait runs out (so this is the most it adds to what a subscriber sees;
    the depth it carries changes every 100 ms at most there), and 100 ms against a Kafka named
    by ``KAFKA_BOOTSTRAP``, which answers as soon as a record arrives. At the hot path's 5 ms
    an idle API made 400 fetches a second, and it and Tansu's answers took about 40% of a
    core with nothing to read."""
    depth_interval_ms: int | None = Field(default=None, ge=1)
    """The hot path publishes at most one ``market.depth`` record a symbol this often (the
    newest book when it is due). Unset: 100 ms against the embedded Tansu, 20 ms against a
    Kafka named by ``KAFKA_BOOTSTRAP``. Tansu keeps every record and lists every stored batch
    of a partition on each fetch that finds data, so a reader's cost grows with the rate times
    the topic's length, which grows at that rate too: at 50 books a second per symbol the HUD's
    API fell seconds behind after about four minutes of trading. A fifth of the rate makes the
    cost grow 25 times slower; the HUD paints a book change within a tenth of a second."""

    hotpath_group_mode: bool = False
    """Run the hot path as one member of a Kafka consumer group sharing ``agent.commands``'
    partitions with the other hot paths of the group (each its own ``IB_CLIENT_ID`` and control
    port). Off (the default, one hot path): it assigns itself every partition, so a restart
    after ``kill -9`` reads at once instead of waiting out the dead member's session."""
    hotpath_group_session_ms: int = Field(default=10_000, ge=1000)
    """In group mode: how long a member may go unheard before the group hands its partitions
    (its accounts) to the others; a hot path killed outright holds its accounts this long."""
    hotpath_publish_linger_ms: int = Field(default=1, ge=0, le=50)
    """How long a record the hot path publishes (order events, depth, trades, sessions) may wait
    for others to share its Kafka request. Under a burst each order makes several records, and
    each produce request is a socket write that wakes the broker: at 0 they were 13% of the hot
    path's CPU at 200 commands/s. Commands are read, not published, so none waits for this."""
    command_partitions: int = Field(default=1, ge=1)
    """Partitions ``agent.commands`` is made with when missing: the most hot paths a group can
    use at once (one account is always on one partition). Kafka cannot spread an existing
    topic's keys again without moving accounts, so set it before the first `floor up`."""

    @property
    def command_fetch_wait_ms(self) -> int:
        if self.kafka_fetch_wait_ms is not None:
            return self.kafka_fetch_wait_ms
        return EMBEDDED_FETCH_WAIT_MS if self.kafka_bootstrap is None else EXTERNAL_FETCH_WAIT_MS

    @property
    def api_feed_fetch_wait_ms(self) -> int:
        if self.api_fetch_wait_ms is not None:
            return self.api_fetch_wait_ms
        return EMBEDDED_API_FETCH_WAIT_MS if self.kafka_bootstrap is None else EXTERNAL_FETCH_WAIT_MS

    @property
    def depth_publish_interval_ms(self) -> int:
        if self.depth_interval_ms is not None:
            return self.depth_interval_ms
        return EMBEDDED_DEPTH_INTERVAL_MS if self.kafka_bootstrap is None else EXTERNAL_DEPTH_INTERVAL_MS

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / "keys"

    @property
    def trader_keys_dir(self) -> Path:
        """Traders' signing keys, apart from the floor's own: the API reads only this folder."""
        return self.keys_dir / "traders"

    @field_validator("broker_accounts")
    @classmethod
    def _known_brokers(cls, value: str) -> str:
        parse_account_brokers(value)  # a typo fails at start-up, not at the first order
        return value

    @model_validator(mode="after")
    def _derive_webauthn_origin(self) -> Self:
        if not self.webauthn_origin:
            self.webauthn_origin = f"http://{self.webauthn_rp_id}:{self.api_port}"
        return self

    def webauthn_origin_problem(self, api_port: int) -> str | None:
        """Why no passkey ceremony could succeed on an API listening on ``api_port`` with these
        settings (the browser's origin is where it opened the page: the API's own address), or
        None. A process that serves ceremonies refuses to start with one."""
        origin = urlsplit(self.webauthn_origin)
        try:
            port = origin.port or {"http": 80, "https": 443}.get(origin.scheme)
        except ValueError:
            port = None
        fix = f"set FLOOR_WEBAUTHN_ORIGIN=http://{self.webauthn_rp_id}:{api_port}, or unset it to have that"
        if origin.scheme not in ("http", "https") or not origin.hostname or origin.path not in ("", "/"):
            return f"FLOOR_WEBAUTHN_ORIGIN={self.webauthn_origin!r} is no origin (scheme://host:port); {fix}"
        if origin.hostname != self.webauthn_rp_id:
            return (
                f"FLOOR_WEBAUTHN_ORIGIN={self.webauthn_origin} names host {origin.hostname}, but the relying "
                f"party id is {self.webauthn_rp_id}: browsers accept an assertion only for a page at that "
                f"host; {fix}"
            )
        if port != api_port:
            return (
                f"FLOOR_WEBAUTHN_ORIGIN={self.webauthn_origin} names port {port}, but the API listens on "
                f"{api_port}: no page it serves could sign in; {fix}"
            )
        return None

    @classmethod
    def on_free_ports(cls, var_dir: Path) -> FloorSettings:
        """Every embedded service on a port free right now: for tests and benchmarks, which
        must not clash with a running floor or with each other, and must never reach a real
        deployment named in the environment."""
        from config.ports import free_port

        ports = {name: free_port() for name in _PORT_FIELDS}
        deployments = dict.fromkeys(("DATABASE_URL", "KAFKA_BOOTSTRAP", "TEMPORAL_ADDRESS", "IB_HOST"))
        processes = ("hotpath", "api", "worker", "cli", "brain")
        deployments |= dict.fromkeys(f"{p}_database_url" for p in processes)
        derived = {"webauthn_origin": ""}  # from the free API port, not the environment
        return cls.model_validate({"var_dir": var_dir, **deployments, **ports, **derived})

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def pg_dir(self) -> Path:
        return self.var_dir / "pg"

    @property
    def db_secrets_dir(self) -> Path:
        """Generated passwords of the embedded Postgres's roles, one file each (0600)."""
        return self.var_dir / "db"

    def embedded_role_url(self, role: str) -> str:
        """The embedded Postgres as ``role``, with its password from var/db/ when it has one
        (a data directory made before the floor had passwords has none: it trusts)."""
        secret = self.db_secrets_dir / f"{role}.password"
        password = f":{quote(secret.read_text().strip(), safe='')}" if secret.exists() else ""
        return f"postgresql://{role}{password}@{self.host}:{self.pg_port}/postgres"

    @property
    def api_url(self) -> str:
        """The API as people and browsers should open it: ``localhost`` for a loopback host,
        because WebAuthn accepts no IP address as relying party (a page at 127.0.0.1 cannot
        sign in), so no link the floor prints for the API names 127.0.0.1."""
        host = "localhost" if self.host in LOOPBACK_HOSTS else self.host
        return f"http://{host}:{self.api_port}"

    @property
    def embedded_database_url(self) -> str:
        """The embedded superuser: for creating the roles, and for tests' set-up and inspection."""
        return self.embedded_role_url("postgres")

    @property
    def db_url(self) -> str:
        """The administrator's URL: ``DATABASE_URL`` (the schema owner) or the embedded
        superuser. Never a runtime process's: those use :meth:`role_url`."""
        return self.database_url or self.embedded_database_url

    @property
    def owner_url(self) -> str:
        """Who runs the migrations: ``DATABASE_URL``, or the embedded ``floor_owner``."""
        return self.database_url or self.embedded_role_url("floor_owner")

    def role_url(self, process: str) -> str:
        """The URL ``process`` (``hotpath``, ``api``, ``worker``, ``cli``, ``brain``) connects with, as its
        own least-privilege role; raises :class:`DatabaseUrlMissing` saying what to set."""
        explicit = getattr(self, f"{process}_database_url")
        if explicit:
            return str(explicit)
        variable = f"FLOOR_{process.upper()}_DATABASE_URL"
        if self.database_url:
            raise DatabaseUrlMissing(
                f"{variable} is not set: with DATABASE_URL set, every floor process connects as its own "
                f"role; create the role floor_{process} (see the README's Security section) and set "
                f"{variable} to its URL"
            )
        if not (self.db_secrets_dir / f"floor_{process}.password").exists():
            raise DatabaseUrlMissing(
                f"no password for the database role floor_{process} in {self.db_secrets_dir}: start the "
                f"floor once with `floor up` (it creates the roles), or set {variable}"
            )
        return self.embedded_role_url(f"floor_{process}")

    @property
    def kafka(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def temporal(self) -> str:
        return self.temporal_address or f"{self.host}:{self.temporal_port}"

    @property
    def schwab_paper_url(self) -> str:
        """The paper Schwab Trader API emulator's base URL (``floor up`` starts it)."""
        return f"http://{self.host}:{self.schwab_api_port}"

    @property
    def ib_gateway_host(self) -> str:
        return self.ib_host or self.host

    @property
    def account_brokers(self) -> dict[str, str]:
        """Each account of ``broker_accounts`` and the broker its orders go to, in order."""
        return parse_account_brokers(self.broker_accounts)

    @property
    def accounts(self) -> list[str]:
        """The accounts of ``broker_accounts``, without their brokers."""
        return list(self.account_brokers)

    @property
    def schwab_token_file(self) -> Path:
        return self.schwab_token_path or self.var_dir / "schwab-token.json"


BROKERS = ("ibkr", "schwab")


def parse_account_brokers(text: str) -> dict[str, str]:
    """``"DU1,SCHW1=schwab"`` -> ``{"DU1": "ibkr", "SCHW1": "schwab"}``; raises ValueError naming
    the entry that names no known broker."""
    out: dict[str, str] = {}
    for entry in text.split(","):
        account, _, broker = (part.strip() for part in entry.partition("="))
        if not account:
            continue
        broker = broker or "ibkr"
        if broker not in BROKERS:
            raise ValueError(
                f"FLOOR_BROKER_ACCOUNTS entry {entry.strip()!r} names broker {broker!r}: use one of "
                f"{', '.join(BROKERS)} (ACCOUNT or ACCOUNT=BROKER)"
            )
        out[account] = broker
    return out


_PORT_FIELDS = tuple(name for name in FloorSettings.model_fields if name.endswith("_port"))
