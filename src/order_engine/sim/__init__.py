"""The simulated Solana side: a cluster, its venues' pools and a moving market.

``build_simulator(SimConfig(...))`` returns a ``Simulator`` whose ``chain``
implements the Chain port and whose ``venues`` are the Raydium and Meteora
clients; the engine cannot tell them from the real thing. See
``docs/simulation.md`` for every formula, parameter and failure mode.

Time: at ``time_scale > 0`` a background task (``start``) produces a slot every
``0.4 s x time_scale``; at ``time_scale == 0`` nothing sleeps: with
``zero_scale_slot_s`` (the engine's setting) a ``SlotDriver`` produces a slot
that often while anything is pending or watched, and none while idle; without
it the slot clock advances deterministically as status polls wait for
signatures (see ``Cluster.poll_signature_statuses``) or as tests call
``advance_slots``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import secrets
from dataclasses import dataclass, field

import structlog
from solders.pubkey import Pubkey

from order_engine.adapters.venues.listing import PoolListing
from order_engine.adapters.venues.meteora import MeteoraVenue
from order_engine.adapters.venues.raydium import RaydiumVenue
from order_engine.dex.spl import associated_token_address
from order_engine.ports.venue import Venue
from order_engine.sim import genesis
from order_engine.sim.chain import SimChain, SlotDriver
from order_engine.sim.cluster import Cluster, ClusterParams
from order_engine.sim.faults import FaultConfig, Faults, Latency
from order_engine.sim.launches import LaunchedPool, Launchpad
from order_engine.sim.ledger import Ledger
from order_engine.sim.market import Market, MarketParams, PoolView

log = structlog.get_logger(__name__)

MARKET_MAKER_UNITS = 10**17  # base units of every token the market maker starts with

__all__ = ["SimConfig", "Simulator", "build_simulator"]


@dataclass
class SimConfig:
    time_scale: float = 1.0
    seed: int | None = None
    transient_failure_rate: float = 0.02
    rate_limit_rate: float = 0.01
    send_timeout_rate: float = 0.01
    ambiguous_share: float = 0.5
    congestion_share: float = 0.10
    market_moves: bool = True  # reference walk, background flow and arbitrage
    cluster: ClusterParams | None = None  # replaces congestion_share and the landing model
    market: MarketParams = field(default_factory=MarketParams)
    pools: tuple[genesis.PoolSpec, ...] = genesis.DEFAULT_POOLS
    # Time scale 0 only: with a value, a slot passes every this many seconds of
    # wall time while a transaction is pending or a signature watched (the
    # engine's setting); without, only status polls and tests advance slots.
    zero_scale_slot_s: float | None = None
    # Background launches: on average one new token and pool every this many
    # slots (0: none), so that a launch listener has something to watch.
    launch_every_slots: int = 0


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.config = cfg
        self.seed = cfg.seed if cfg.seed is not None else secrets.randbits(63)
        self.time_scale = cfg.time_scale
        self.ledger = Ledger()
        prices = dict(genesis.REFERENCE_USD)
        driven = cfg.time_scale == 0 and cfg.zero_scale_slot_s is not None
        params = dataclasses.replace(
            cfg.cluster or ClusterParams(congestion_share=cfg.congestion_share),
            # Polls drive the clock too (with a driver as well): a client that only
            # polls, over JSON-RPC, must see a lost transaction's blockhash expire.
            advance_on_poll=cfg.time_scale == 0,
        )
        self.cluster = Cluster(self.ledger, params, seed=self.seed)
        self.records = genesis.build_genesis(
            self.ledger, cfg.pools, prices, self.cluster.unix_timestamp
        )
        self.pools: list[PoolListing] = [r.listing for r in self.records]
        self.faults = FaultConfig(
            cfg.transient_failure_rate,
            cfg.rate_limit_rate,
            cfg.send_timeout_rate,
            cfg.ambiguous_share,
        )
        latency = Latency(
            cfg.time_scale, random.Random(f"{self.seed}:latency"), yield_at_zero=not driven
        )
        self.driver = (
            SlotDriver(self.cluster, cfg.zero_scale_slot_s)
            if driven and cfg.zero_scale_slot_s is not None
            else None
        )
        self.chain = SimChain(
            self.cluster,
            Faults(self.faults, random.Random(f"{self.seed}:faults")),
            latency,
            self.driver,
        )
        self.venues: list[Venue] = [
            RaydiumVenue(self.chain, self.pools, delay=latency.quote),
            MeteoraVenue(self.chain, self.pools, delay=latency.quote),
        ]
        trader = genesis.sim_address("market-maker")
        genesis.fund(
            self.ledger,
            trader,
            MARKET_MAKER_UNITS,
            {t.mint: MARKET_MAKER_UNITS for t in genesis.TOKENS.values()},
        )
        self.market = Market(
            self.ledger,
            self.records,
            prices,
            params=cfg.market,
            rng=random.Random(f"{self.seed}:market"),
            trader=trader,
            slot_seconds=params.slot_seconds,
        )
        if cfg.market_moves:
            self.cluster.on_slot(self.market.on_slot)
            self.cluster.before_access(self.market.touch)
        self.launched: list[LaunchedPool] = []
        self.launchpad = Launchpad(self.cluster, self.ledger, seed=self.seed, on_pool=self._listed)
        if cfg.launch_every_slots > 0:
            self._launch_rng = random.Random(f"{self.seed}:launches")
            self.cluster.on_slot(self._maybe_launch)
        self._ticker: asyncio.Task[None] | None = None

    def _listed(self, launched: LaunchedPool) -> None:
        """A new pool is published in the pool list, as the venues' pool APIs list
        new pools, and the in-process venue clients can route through it."""
        self.launched.append(launched)
        self.pools.append(launched.listing)
        for venue in self.venues:
            add = getattr(venue, "add_pool", None)
            if add is not None:
                add(launched.listing)

    def _maybe_launch(self, _env: object) -> None:
        if self._launch_rng.random() * self.config.launch_every_slots < 1:
            launched = self.launchpad.random_launch(self._launch_rng)
            log.info(
                "sim_background_launch",
                venue=launched.listing.venue,
                pool=launched.listing.address,
                symbol=launched.listing.symbol,
                slot=launched.slot,
            )

    # --- the factory's contract --------------------------------------------------------

    def fund(self, owner: Pubkey, *, lamports: int, tokens: dict[str, int]) -> None:
        """Genesis airdrop: ``lamports`` to ``owner``, ``tokens`` (mint -> base units)
        into its associated token accounts (wrapped SOL for the SOL mint)."""
        genesis.fund(self.ledger, owner, lamports, tokens)

    async def start(self) -> None:
        """Start the slot clock (nothing to start at ``time_scale == 0``)."""
        if self.time_scale > 0 and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="sim-slot-clock")

    async def stop(self) -> None:
        if self.driver is not None:
            self.driver.stop()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.cluster.params.slot_seconds * self.time_scale
        deadline = loop.time()
        while True:
            deadline += period
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                self.cluster.advance_slot()
            except Exception:  # a bug in one slot must not stop the clock
                log.exception("sim_slot_failed", slot=self.cluster.slot)

    # --- test hooks ----------------------------------------------------------------------

    def advance_slots(self, count: int = 1) -> None:
        self.cluster.advance_slots(count)

    def executions(self, signature: str) -> int:
        """How many times the transaction with ``signature`` executed (0 or 1)."""
        return self.cluster.executions[signature]

    def token_balance(self, owner: Pubkey, mint: str) -> int:
        account = self.ledger.tokens.get(associated_token_address(owner, Pubkey.from_string(mint)))
        return 0 if account is None else account.amount

    def lamports(self, owner: Pubkey) -> int:
        return self.ledger.balance(owner)

    def pool(self, symbol: str, kind: str) -> PoolListing:
        """The listing of the ``kind`` pool (``amm_v4``/``cpmm``/``dlmm``) for ``symbol``
        (e.g. ``"SOL/USDC"``, either order)."""
        wanted = set(symbol.split("/"))
        for record in self.records:
            if record.listing.kind == kind and {record.symbol_a, record.symbol_b} == wanted:
                return record.listing
        raise KeyError(f"no {kind} pool for {symbol}")

    def pool_view(self, listing: PoolListing) -> PoolView:
        """Current price (B per A, base units), fee and reserves of a pool."""
        record = next(r for r in self.records if r.listing.address == listing.address)
        self.market.touch((listing.pubkey,))
        return self.market.view(record)

    def reference_price(self, symbol: str) -> float:
        """The reference USD price the market is walking."""
        return self.market.prices[symbol]


def build_simulator(cfg: SimConfig) -> Simulator:
    return Simulator(cfg)
