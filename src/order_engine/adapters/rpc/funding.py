"""What a distributed worker needs from the chain server besides the Chain port:
the venues' pool list, and (on the simulator only) a funded wallet."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import orjson
import structlog
from solders.pubkey import Pubkey

from order_engine.adapters.rpc import wire
from order_engine.adapters.rpc.chain import RpcChain, RpcUnavailable, wait_until_settled
from order_engine.adapters.venues.listing import PoolListing
from order_engine.app.launches import CreatedPool
from order_engine.dex.spl import associated_token_address
from order_engine.dex.token_accounts import decode_mint
from order_engine.domain.errors import EngineError, TransientError
from order_engine.domain.tokens import Token

log = structlog.get_logger(__name__)

T = TypeVar("T")
VALIDITY_BLOCKS = 150  # a blockhash fetched at height h is valid through h + 150
POLL_S = 0.02


class FundingFailed(EngineError):
    """An airdrop landed with an error, or the wallet was not funded in time."""


async def fetch_pool_listing(base_url: str, *, timeout_s: float = 10.0) -> list[PoolListing]:
    """The venues' static pool lists from the chain server's ``GET /pools``.

    Raises ``RpcUnavailable`` when the server cannot be reached or answers
    something other than a pool list.
    """
    url = base_url.rstrip("/") + "/pools"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url) as response,
        ):
            body = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise RpcUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    if status != 200:
        raise RpcUnavailable(f"GET {url}: expected 200 with a pool list, got HTTP {status}")
    try:
        return [wire.listing_from_json(item) for item in orjson.loads(body)["pools"]]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise RpcUnavailable(f"GET {url}: expected {{'pools': [...]}}, got {body[:200]!r}") from exc


async def ensure_funded(
    chain_url: str,
    owner: Pubkey,
    *,
    lamports: int,
    tokens: Mapping[str, int],
    timeout_s: float = 60.0,
) -> bool:
    """Top ``owner`` up to at least ``lamports`` and, per mint, ``tokens[mint]`` base
    units in its associated token account, from the simulator's faucet.

    Idempotent: it reads the balances first and asks only for what is missing,
    so a worker may call it at every start. Two callers racing may both top up
    (the wallet then holds more than the target, never less). Returns ``False``,
    doing nothing, when ``getVersion`` does not identify the simulator (a real
    cluster's wallet is funded by its operator). Raises ``FundingFailed`` if an
    airdrop fails on chain or the targets are not reached within ``timeout_s``.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with RpcChain(chain_url) as chain:
        version = await _retrying(chain.get_version, deadline)
        if not version.get("order-engine-sim"):
            log.info("ensure_funded_skipped", url=chain_url, version=version)
            return False
        while True:
            requested = await _request_shortfalls(chain, owner, lamports, tokens, deadline)
            if not requested:
                return True
            if asyncio.get_running_loop().time() > deadline:
                raise FundingFailed(f"{owner} not funded within {timeout_s} s on {chain_url}")
            height = await _retrying(chain.get_block_height, deadline)
            settle = functools.partial(
                wait_until_settled,
                chain,
                requested,
                expires_after_height=height + VALIDITY_BLOCKS,
                poll_s=POLL_S,
            )
            settled = await _retrying(settle, deadline)
            failed = {s: status.err for s, status in settled.items() if status and status.err}
            if failed:
                raise FundingFailed(f"airdrops to {owner} failed on chain: {failed}")
            # An airdrop that expired unseen is asked for again on the next round.


async def _retrying(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    """``call()``, again after each transient failure until ``deadline``."""
    while True:
        try:
            return await call()
        except TransientError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(POLL_S)


async def _request_shortfalls(
    chain: RpcChain, owner: Pubkey, lamports: int, tokens: Mapping[str, int], deadline: float
) -> list[str]:
    """Ask the faucet for whatever ``owner`` lacks; the airdrops' signatures."""
    requested: list[str] = []
    have = await _retrying(lambda: chain.get_balance(owner), deadline)
    if have < lamports:
        short = lamports - have
        requested.append(await _retrying(lambda: chain.request_airdrop(owner, short), deadline))
    for mint, target in tokens.items():
        account = associated_token_address(owner, Pubkey.from_string(mint))
        held = await _retrying(
            functools.partial(chain.get_token_account_balance, account), deadline
        )
        missing = target - (held or 0)
        if missing > 0:
            drop = functools.partial(chain.sim_airdrop_tokens, owner, mint, missing)
            airdrop = await _retrying(drop, deadline)
            requested.append(airdrop)
    return requested


class RpcLaunches:
    """``app.launches.SimLaunches`` over the chain process's launch methods."""

    def __init__(self, chain: RpcChain) -> None:
        self.chain = chain

    async def create_token(
        self,
        symbol: str,
        decimals: int,
        supply: int,
        *,
        mint_authority_revoked: bool,
        freeze_authority_revoked: bool,
    ) -> Token:
        made = await self.chain.sim_launch(
            "simCreateToken",
            {
                "symbol": symbol,
                "decimals": decimals,
                "supply": supply,
                "mintAuthorityRevoked": mint_authority_revoked,
                "freezeAuthorityRevoked": freeze_authority_revoked,
            },
        )
        return Token(str(made["symbol"]), str(made["mint"]), int(made["decimals"]))

    async def mint_decimals(self, mint: str) -> int:
        (data,) = await self.chain.get_multiple_accounts([mint])
        if data is None:
            raise ValueError(f"{mint} is not an account on this cluster")
        return decode_mint(data).decimals

    async def create_pool(
        self, venue: str, base_mint: str, quote_mint: str, base_amount: int, quote_amount: int
    ) -> CreatedPool:
        made = await self.chain.sim_launch(
            "simCreatePool",
            {
                "venue": venue,
                "baseMint": base_mint,
                "quoteMint": quote_mint,
                "baseAmount": base_amount,
                "quoteAmount": quote_amount,
            },
        )
        return CreatedPool(
            str(made["venue"]),
            str(made["pool"]),
            int(made["slot"]),
            str(made["signature"]),
            base_mint,
            quote_mint,
        )
