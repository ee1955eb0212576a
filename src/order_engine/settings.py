"""The one place that reads the environment (and ``.env``).

Every field is documented with its default; ``order-engine settings`` prints
the effective values. Nothing else in the code base calls ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- serving -----------------------------------------------------------------
    host: str = Field("127.0.0.1", description="HOST: interface the API binds to.")
    port: int = Field(3000, ge=0, le=65535, description="PORT: TCP port of the API.")
    max_body_bytes: int = Field(
        16_384, ge=256, description="MAX_BODY_BYTES: larger request bodies get 413."
    )
    max_ws_message_bytes: int = Field(
        16_384,
        ge=256,
        le=16 * 1024 * 1024,
        description="MAX_WS_MESSAGE_BYTES: a larger WebSocket frame or message closes the "
        "socket (1009), before it is buffered.",
    )
    max_connections: int = Field(
        1_000,
        ge=1,
        description="MAX_CONNECTIONS: concurrent connections and requests one API process "
        "serves; beyond it new ones get 503 at once.",
    )
    listen_backlog: int = Field(
        4096,
        ge=1,
        le=65535,
        description="LISTEN_BACKLOG: connections the kernel queues until the server accepts "
        "them (capped by net.core.somaxconn); beyond it a burst of connects is reset.",
    )
    ws_per_message_deflate: bool = Field(
        False,
        description="WS_PER_MESSAGE_DEFLATE: accept permessage-deflate when a client offers it "
        "(browsers do). Off by default: each compressed socket holds two zlib contexts, about "
        "40 KB, and the frames here are small JSON messages that compress to little.",
    )
    ws_ping_interval_s: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="WS_PING_INTERVAL_S: keepalive ping per WebSocket (0: none); a socket "
        "that does not answer within WS_PING_TIMEOUT_S is closed (1011).",
    )
    ws_ping_timeout_s: float = Field(
        20.0, gt=0, le=3600, description="WS_PING_TIMEOUT_S: see WS_PING_INTERVAL_S."
    )
    ws_send_buffer_bytes: int = Field(
        65_536,
        ge=0,
        le=16 * 1024 * 1024,
        description="WS_SEND_BUFFER_BYTES: the kernel send buffer of each WebSocket (0: the "
        "kernel's own autotuning, up to 4 MB on Linux). Bounds what a client that stops "
        "reading pins in the kernel before its stream buffer fills and it is closed (4008).",
    )
    body_read_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="BODY_READ_TIMEOUT_S: a request body not received whole within this "
        "gets 408 (a slow upload cannot hold a request slot).",
    )
    ws_ticket_ttl_s: float = Field(
        30.0,
        gt=0,
        le=300,
        description="WS_TICKET_TTL_S: how long a ticket from POST /api/ws-tickets may be "
        "redeemed (once) as a WebSocket's ?ticket=.",
    )
    ws_auth_timeout_s: float = Field(
        3.0,
        gt=0,
        le=60,
        description="WS_AUTH_TIMEOUT_S: a WebSocket that owes its key (or its order) as the "
        "first message is closed if none arrives within this.",
    )
    drain_timeout_s: float = Field(
        10.0, ge=0, description="DRAIN_TIMEOUT_S: on shutdown, how long in-flight jobs may finish."
    )

    # --- storage -------------------------------------------------------------------
    database_url: str = Field(
        "sqlite+aiosqlite:///./order_engine.db",
        description="DATABASE_URL: SQLite by default; postgresql+asyncpg://... when distributed.",
    )
    redis_url: str | None = Field(
        None, description="REDIS_URL: set to use Redis for the queue and event bus."
    )
    redis_host: str | None = Field(
        None, description="REDIS_HOST: the seed's name; builds REDIS_URL."
    )
    redis_port: int = Field(6379, description="REDIS_PORT: the seed's name; used with REDIS_HOST.")
    db_pool_size: int = Field(
        10,
        ge=1,
        le=1_000,
        description="DB_POOL_SIZE: PostgreSQL connections a process keeps open (SQLite: unused).",
    )
    db_max_overflow: int = Field(
        10,
        ge=0,
        le=1_000,
        description=(
            "DB_MAX_OVERFLOW: extra PostgreSQL connections a process may open under load. "
            "Keep processes x (size + overflow) under the server's max_connections (100)."
        ),
    )
    redis_max_connections: int = Field(
        256,
        ge=8,
        le=100_000,
        description=(
            "REDIS_MAX_CONNECTIONS: per Redis pool (queue, bus, rate limit); a caller "
            "beyond it waits up to 5 s for a free connection instead of failing."
        ),
    )

    # --- execution -------------------------------------------------------------------
    worker_concurrency: int = Field(
        10, ge=1, le=10_000, description="WORKER_CONCURRENCY: jobs one worker runs at once."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="MAX_ATTEMPTS: deliveries of a job before the order fails."
    )
    backoff_base_ms: int = Field(
        250, ge=0, description="BACKOFF_BASE_MS: first retry delay; doubles per attempt, jittered."
    )
    backoff_max_ms: int = Field(10_000, ge=0, description="BACKOFF_MAX_MS: retry delay cap.")
    lease_s: float = Field(
        15.0, gt=0, description="LEASE_S: a worker's claim on an order; renewed while it runs."
    )
    venue_timeout_ms: int = Field(
        2_000, ge=1, description="VENUE_TIMEOUT_MS: a venue slower than this is skipped."
    )
    default_slippage_bps: int = Field(
        50, ge=1, le=5000, description="DEFAULT_SLIPPAGE_BPS: when an order gives none."
    )
    max_price_impact_bps: int = Field(
        1_000,
        ge=0,
        le=10_000,
        description="MAX_PRICE_IMPACT_BPS: an order whose chosen route moves the price more "
        "than this (basis points, fee excluded) fails before signing with "
        "price_impact_too_high; 0 = no bound.",
    )
    compute_unit_limit: int = Field(
        300_000, ge=1, description="COMPUTE_UNIT_LIMIT: per transaction (one swap leg)."
    )
    compute_unit_price: int = Field(
        50_000, ge=0, description="COMPUTE_UNIT_PRICE: priority fee, micro-lamports per CU."
    )
    wallet_path: Path = Field(
        Path(".order-engine/wallet.json"),
        description="WALLET_PATH: engine keypair (Solana CLI JSON); generated on first run.",
    )
    reconcile_interval_s: float = Field(
        10.0, gt=0, description="RECONCILE_INTERVAL_S: how often lost jobs are re-enqueued."
    )
    expiry_sweep_s: float = Field(
        1.0, gt=0, description="EXPIRY_SWEEP_S: how often open orders past their expiry end."
    )
    watch_discover_s: float = Field(
        1.0,
        gt=0,
        description="WATCH_DISCOVER_S: how often the price watcher reads the limit orders "
        "other processes accepted.",
    )
    watch_resync_s: float = Field(
        60.0,
        gt=0,
        description="WATCH_RESYNC_S: how often the price watcher reloads its whole book "
        "(dropping orders cancelled elsewhere).",
    )
    reconcile_stale_s: float = Field(
        30.0,
        gt=0,
        description="RECONCILE_STALE_S: an active order unchanged and unleased this long is "
        "re-enqueued.",
    )
    queue_name: str = Field("orders", description="QUEUE_NAME: the SAQ queue (distributed).")
    bus_prefix: str = Field(
        "order-engine", description="BUS_PREFIX: Redis pub/sub channel prefix (distributed)."
    )
    job_heartbeat_s: float = Field(
        3.0, gt=0, description="JOB_HEARTBEAT_S: a dead worker's job is swept after ~this + 2 s."
    )
    rpc_timeout_s: float = Field(
        10.0, gt=0, description="RPC_TIMEOUT_S: per JSON-RPC call to SOLANA_RPC_URL."
    )

    # --- live streams (app/live.py) --------------------------------------------------
    stream_buffer_events: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="STREAM_BUFFER_EVENTS: messages a WebSocket stream may have waiting for "
        "a client that reads too slowly; one more closes it with 4008 and a reason naming the "
        "cursor to resume from (messages are shared strings: the cost is a pointer each).",
    )
    stream_sweep_s: float = Field(
        10.0,
        gt=0,
        description="STREAM_SWEEP_S: while streams are open, how often the process's one "
        "stream tailer re-reads the log (and per-order streams silent that long re-read their "
        "order), recovering an event whose publish was lost. No per-stream timers.",
    )

    # --- API access and admission (docs/operations.md) ------------------------------
    auth_mode: Literal["auto", "required", "off"] = Field(
        "auto",
        description="AUTH_MODE: auto = open until an API key exists, then keys required; "
        "required = keys always required (`order-engine api`); off = no keys needed (insecure).",
    )
    open_mode_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="OPEN_MODE_HOSTS: while no key is required (AUTH_MODE=off, or auto "
        "before the first key), only requests whose Host, and Origin if any, name one of "
        "these hosts are served (403 otherwise): a web page elsewhere, or a DNS-rebound "
        'name, cannot trade the wallet. JSON list, e.g. ["127.0.0.1","engine.internal"].',
    )
    admin_keys: list[str] = Field(
        default_factory=list,
        description="ADMIN_KEYS: ids of the API keys (`order-engine keys list`) that may use "
        'the admin endpoints (/api/sim/*) while keys are required. JSON list, e.g. ["3f9a0c12de"].',
    )
    auth_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="AUTH_CACHE_S: how long a key lookup is cached; a key created or revoked "
        "takes effect within this.",
    )
    rate_limit_per_s: float = Field(
        200.0,
        ge=0,
        description="RATE_LIMIT_PER_S: requests per second per API key (token bucket refill); "
        "0 = no limit.",
    )
    rate_limit_burst: int = Field(
        400, ge=1, description="RATE_LIMIT_BURST: token bucket size per API key."
    )
    max_queue_depth: int = Field(
        10_000,
        ge=0,
        description="MAX_QUEUE_DEPTH: new orders get 503 while more jobs than this wait; 0 = "
        "no bound.",
    )
    max_queue_wait_ms: float = Field(
        500,
        ge=0,
        description=(
            "MAX_QUEUE_WAIT_MS: new orders get 503 while the waiting jobs would take longer "
            "than this to start, at the rate the workers have been taking them (keeps the "
            "latency of accepted orders bounded under overload); 0 = no latency bound."
        ),
    )
    queue_depth_cache_s: float = Field(
        0.5,
        ge=0,
        le=10,
        description="QUEUE_DEPTH_CACHE_S: how long a queue-depth reading serves admission.",
    )
    idempotency_retention_h: float = Field(
        24.0,
        ge=24,
        description="IDEMPOTENCY_RETENTION_H: Idempotency-Key records are kept this long.",
    )
    idempotency_purge_s: float = Field(
        60.0,
        gt=0,
        description="IDEMPOTENCY_PURGE_S: how often each API process deletes keys past their "
        "retention (in batches of 1,000 rows).",
    )
    idempotency_in_flight_s: float = Field(
        60.0,
        gt=0,
        description="IDEMPOTENCY_IN_FLIGHT_S: a key still in flight after this (its request "
        "died) may be taken over by a retry.",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="METRICS_PORT: `order-engine worker` serves /metrics here (API processes "
        "serve it on their own port).",
    )

    # --- simulator -------------------------------------------------------------------
    solana_rpc_url: str | None = Field(
        None, description="SOLANA_RPC_URL: a cluster's JSON-RPC; unset = in-process simulator."
    )
    sim_time_scale: float = Field(
        1.0,
        ge=0,
        le=100,
        description="SIM_TIME_SCALE: 1 = realistic latencies; 0 = no simulated waits at all.",
    )
    sim_zero_scale_slot_ms: float = Field(
        3.0,
        ge=0,
        le=400,
        description=(
            "SIM_ZERO_SCALE_SLOT_MS: at SIM_TIME_SCALE=0, the wall time per slot while a "
            "transaction is pending or awaited (a slot costs ~0.4 ms of market flow); "
            "no slot runs while the engine is idle. 0: slots pass only as status polls "
            "come (deterministic, for tests that steer time slot by slot)."
        ),
    )
    sim_seed: int | None = Field(
        None, description="SIM_SEED: seed for reproducible simulations; unset = random."
    )
    sim_transient_failure_rate: float = Field(
        0.02,
        ge=0,
        le=1,
        description="SIM_TRANSIENT_FAILURE_RATE: share of venue/RPC calls failing transiently.",
    )
    sim_launch_every_slots: int = Field(
        0,
        ge=0,
        description="SIM_LAUNCH_EVERY_SLOTS: random background launches (a new token and "
        "its SOL pool on a random venue), on average one every this many slots; 0 = none.",
    )

    # --- logging ---------------------------------------------------------------------
    log_level: str = Field("INFO", description="LOG_LEVEL: DEBUG, INFO, WARNING, ...")
    access_log: bool = Field(
        False,
        description=(
            "ACCESS_LOG: one uvicorn line per HTTP request and WebSocket. Off by default: "
            "the engine logs every order's acceptance and outcome itself, and two more lines "
            "per order cost about a tenth of its CPU under load."
        ),
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="LOG_FORMAT: auto = pretty on a terminal, JSON otherwise."
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the usual sync URLs and pick the async driver for them."""
        for plain, async_ in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return async_ + url[len(plain) :]
        return url

    @property
    def sim_zero_scale_slot_s(self) -> float | None:
        """``SIM_ZERO_SCALE_SLOT_MS`` in seconds; ``None`` when 0 (no slot driver)."""
        return self.sim_zero_scale_slot_ms / 1000 or None

    @property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/0"
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def distributed(self) -> bool:
        return self.effective_redis_url is not None
