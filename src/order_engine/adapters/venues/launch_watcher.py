"""``LaunchWatcher``: the launch feed over the Chain port, as a sniper bot follows a
venue's program.

Every pool creation names one well-known account (Raydium CPMM's create-pool
fee receiver; the Meteora preset parameter that new pairs are made from), so
the watcher follows those addresses (``Chain.logs_mentioning``:
``logsSubscribe`` in process, ``getSignaturesForAddress`` over JSON-RPC),
takes the pool address from the initialise instruction's log, reads the pool
account and decodes it into the listing the venue clients swap with (vaults,
config, oracle: everything a swap names is in the pool state), and reads the
mints and vaults for the launch's facts. The venues route through the pool from
then on, and the token registry knows its mints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog
from solders.pubkey import Pubkey

from order_engine.adapters.venues.base import VenueUnavailable
from order_engine.adapters.venues.listing import KIND_CPMM, KIND_DLMM, PoolListing
from order_engine.adapters.venues.meteora import MeteoraVenue
from order_engine.adapters.venues.raydium import RaydiumVenue
from order_engine.dex import launches
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.sysvar import CLOCK_SYSVAR_ID, decode_clock
from order_engine.dex.token_accounts import decode_mint, token_account_amount
from order_engine.domain.routing import PoolSnapshot
from order_engine.domain.tokens import Token, TokenRegistry
from order_engine.ports.chain import Chain, LogsNotice
from order_engine.ports.launches import MintInfo, PoolLaunch
from order_engine.ports.venue import Venue

log = structlog.get_logger(__name__)

_POOL_LOG = {"raydium": "Program log: pool ", "meteora": "Program log: lb_pair "}


def created(venue: str, logs: Sequence[str]) -> tuple[str, str, str] | None:
    """(pool, mint A, mint B) from the initialise instruction's log line."""
    prefix = _POOL_LOG[venue]
    for line in logs:
        if line.startswith(prefix) and (" token_0 " in line or " token_x " in line):
            words = line[len(prefix) :].split()
            if len(words) >= 5:
                return words[0], words[2], words[4]
    return None


def pool_address(venue: str, logs: Sequence[str]) -> str | None:
    found = created(venue, logs)
    return None if found is None else found[0]


def _derived_vaults(venue: str, pool: str, mint_a: str, mint_b: str) -> tuple[str, str]:
    key = Pubkey.from_string(pool)
    a, b = Pubkey.from_string(mint_a), Pubkey.from_string(mint_b)
    if venue == "raydium":
        return str(launches.cpmm_vault(key, a)), str(launches.cpmm_vault(key, b))
    return str(dlmm.reserve_address(key, a)), str(dlmm.reserve_address(key, b))


def listing_from_state(venue: str, address: str, data: bytes, symbol: str) -> PoolListing:
    """The venue listing of a pool, from its state account alone."""
    if venue == "raydium":
        state = cpmm.decode_pool_state(data)
        return PoolListing(
            "raydium",
            KIND_CPMM,
            address,
            str(state.token_0_mint),
            str(state.token_1_mint),
            symbol,
            {
                "amm_config": str(state.amm_config),
                "token_0_vault": str(state.token_0_vault),
                "token_1_vault": str(state.token_1_vault),
                "observation": str(state.observation_key),
            },
        )
    pair = dlmm.decode_lb_pair(data)
    return PoolListing(
        "meteora",
        KIND_DLMM,
        address,
        str(pair.token_x_mint),
        str(pair.token_y_mint),
        symbol,
        {
            "reserve_x": str(pair.reserve_x),
            "reserve_y": str(pair.reserve_y),
            "oracle": str(pair.oracle),
        },
    )


def _vaults(listing: PoolListing) -> tuple[str, str]:
    k = listing.keys
    if listing.kind == KIND_CPMM:
        return k["token_0_vault"], k["token_1_vault"]
    return k["reserve_x"], k["reserve_y"]


class LaunchWatcher:
    """Implements ``order_engine.ports.launches.LaunchFeed``."""

    def __init__(
        self,
        chain: Chain,
        venues: Sequence[Venue],
        tokens: TokenRegistry,
        *,
        names: Callable[[str], str | None] | None = None,
    ) -> None:
        self.chain = chain
        self.tokens = tokens
        self._names = names
        self._venues: dict[str, RaydiumVenue | MeteoraVenue] = {
            v.name: v for v in venues if isinstance(v, (RaydiumVenue, MeteoraVenue))
        }
        self._witnesses = [
            (venue, str(address))
            for venue, address in launches.launch_witnesses()
            if venue in self._venues
        ]
        self._cursor: dict[str, str | None] = {address: None for _, address in self._witnesses}
        # A look that waits and one that does not (a router catching up) may run at
        # once: reads are serialised, and a transaction is read once.
        self._reading = asyncio.Lock()
        self._read_already: set[str] = set()

    async def pool_snapshot(
        self, launch: PoolLaunch, input_mint: str, output_mint: str
    ) -> PoolSnapshot:
        venue = self._venues.get(launch.venue)
        if venue is None:
            raise VenueUnavailable(f"no {launch.venue} client in this process")
        return await venue.read_pool(launch.pool, input_mint, output_mint)

    async def next_launches(self, timeout_s: float) -> list[PoolLaunch]:
        found: list[PoolLaunch] = []
        for venue, address in self._witnesses:
            notices = await self.chain.logs_mentioning(
                address, after=self._cursor[address], timeout_s=0
            )
            found += await self._read(venue, address, notices)
        if not found and timeout_s > 0:
            found = await self._wait(timeout_s)
        found.sort(key=lambda launch: launch.slot)
        return found

    async def _wait(self, timeout_s: float) -> list[PoolLaunch]:
        """Wait on every witness at once; read whichever answers first."""
        waits = {
            asyncio.ensure_future(
                self.chain.logs_mentioning(a, after=self._cursor[a], timeout_s=timeout_s)
            ): (venue, a)
            for venue, a in self._witnesses
        }
        found: list[PoolLaunch] = []
        try:
            done, _pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                venue, address = waits[task]
                found += await self._read(venue, address, task.result())
        finally:
            for task in waits:
                task.cancel()
            # gather, not a suppressed await per task: a cancellation of this look
            # itself (the engine stopping) must still propagate.
            await asyncio.gather(*waits, return_exceptions=True)
        return found

    async def _read(
        self, venue: str, address: str, notices: Sequence[LogsNotice]
    ) -> list[PoolLaunch]:
        found: list[PoolLaunch] = []
        async with self._reading:
            for notice in notices:
                if notice.signature in self._read_already:
                    continue
                launch = await self._launch(venue, notice) if notice.err is None else None
                if launch is not None:
                    found.append(launch)
                self._read_already.add(notice.signature)
                self._cursor[address] = notice.signature
        return found

    async def _launch(self, venue: str, notice: LogsNotice) -> PoolLaunch | None:
        found = created(venue, notice.logs)
        if found is None:
            return None
        # Everything a launch's facts need, in one round trip: the pool state, both
        # mints, both vaults (the program's addresses, derived from the log line's
        # pool and mints) and the clock, for the slot the facts were read at.
        address, log_a, log_b = found
        wanted = [address, log_a, log_b, *_derived_vaults(venue, *found), str(CLOCK_SYSVAR_ID)]
        datas = await self.chain.get_multiple_accounts(wanted)
        if any(d is None for d in datas):
            log.warning("launch_accounts_missing", venue=venue, pool=address)
            return None
        data, mint_a, mint_b, raw_a, raw_b, raw_clock = (d for d in datas if d is not None)
        listing = listing_from_state(venue, address, data, "")
        if [listing.mint_a, listing.mint_b, *_vaults(listing)] != wanted[1:5]:
            log.warning("launch_log_disagrees_with_pool", venue=venue, pool=address)
            return None
        mints = {
            listing.mint_a: self._mint_info(listing.mint_a, mint_a),
            listing.mint_b: self._mint_info(listing.mint_b, mint_b),
        }
        amount_a, amount_b = token_account_amount(raw_a), token_account_amount(raw_b)
        opens_at = None
        if listing.kind == KIND_CPMM:
            state = cpmm.decode_pool_state(data)
            amount_a, amount_b = state.reserves(amount_a, amount_b)
            opens_at = state.open_time
        names = (self.tokens.by_mint(m).symbol for m in (listing.mint_a, listing.mint_b))
        symbol = "/".join(names)
        listing = listing_from_state(venue, address, data, symbol)
        self._venues[venue].add_pool(listing)
        height = decode_clock(raw_clock).slot
        log.info("pool_launch_seen", venue=venue, pool=address, slot=notice.slot, seen=height)
        return PoolLaunch(
            venue=venue,
            pool=address,
            kind=listing.kind,
            mint_a=listing.mint_a,
            mint_b=listing.mint_b,
            slot=notice.slot,
            signature=notice.signature,
            seen_slot=height,
            reserves={listing.mint_a: amount_a, listing.mint_b: amount_b},
            mints=mints,
            opens_at=opens_at,
        )

    def _mint_info(self, mint: str, data: bytes) -> MintInfo:
        decoded = decode_mint(data)
        if not self.tokens.knows(mint):
            name = (self._names(mint) if self._names else None) or mint[:6]
            self.tokens.register(Token(name, mint, decoded.decimals))
        return MintInfo(
            decoded.decimals,
            decoded.supply,
            None if decoded.mint_authority is None else str(decoded.mint_authority),
            None if decoded.freeze_authority is None else str(decoded.freeze_authority),
        )
