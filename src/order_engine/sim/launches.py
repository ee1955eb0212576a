"""Token and pool launches on the simulated cluster.

A *token* is an SPL mint account (82 bytes) whose whole supply goes to the
launchpad's wallet, with mint and freeze authority held by that wallet or
revoked (``COption::None``), as ``spl-token create-token`` then
``authorize --disable`` leave them. A *pool* is created by a transaction the
launchpad signs, through the venue program's own initialise instructions
(``sim/launch_programs.py``): Raydium CPMM ``initialize``, or Meteora DLMM
``initialize_lb_pair`` + ``initialize_bin_array`` + ``add_liquidity_by_weight``.
That transaction is executed at once in the current slot (``Cluster.land_now``:
the launch is the leader's own transaction), so the caller learns the slot its
pool was created in, and it shows in the chain's history and logs like any
other, where a launch listener finds it.

The launchpad's quote tokens (SOL, USDC, ...) come from the simulator's faucet
just before the launch, as a launcher would have bought them.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.adapters.venues.listing import KIND_CPMM, KIND_DLMM, PoolListing
from order_engine.app.launches import CreatedPool
from order_engine.dex import launches, spl
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.token_accounts import Mint, decode_mint, encode_mint
from order_engine.domain.tokens import U64_MAX, Token
from order_engine.sim import genesis
from order_engine.sim.cluster import Cluster
from order_engine.sim.ledger import Ledger

VENUES = ("raydium", "meteora")
LAUNCHPAD_LAMPORTS = 10**18  # the launchpad pays rent, fees and the create-pool fee
DLMM_SPAN_BINS = 34  # liquidity within +-34 bins of the start price (69 bins, one position)
LAUNCH_CU_LIMIT = 400_000
LAUNCH_CU_PRICE = 1_000_000  # micro-lamports: what a launcher pays to be first


class LaunchRejected(ValueError):
    """The launch cannot be made as asked (what was expected, what arrived)."""


@dataclass(frozen=True, slots=True)
class LaunchedPool:
    listing: PoolListing
    slot: int
    signature: str


def _launch_key(seed: int, label: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(f"{seed}:launchpad:{label}".encode()).digest())


class Launchpad:
    """Creates tokens and pools; ``on_pool`` hears of every pool it creates."""

    def __init__(
        self,
        cluster: Cluster,
        ledger: Ledger,
        *,
        seed: int,
        on_pool: Callable[[LaunchedPool], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.ledger = ledger
        self.seed = seed
        self.wallet = _launch_key(seed, "wallet")
        self.tokens: dict[str, Token] = {}  # mint -> token, the ones launched here
        self._count = 0
        self._on_pool = on_pool
        genesis.fund(ledger, self.wallet.pubkey(), LAUNCHPAD_LAMPORTS, {})
        # The accounts pool creation names, so that launches are found from the start.
        for _venue, witness in launches.launch_witnesses():
            cluster.index(witness)
        step, params = launches.launch_preset()
        preset = launches.dlmm_preset_parameter(step, params.base_factor)
        if preset not in ledger.data:
            raw = launches.encode_preset_parameter(step, params)
            ledger.set_data(preset, dlmm.PROGRAM_ID, raw, lamports=1_447_680)

    # --- tokens ------------------------------------------------------------------------

    def create_token(
        self,
        symbol: str,
        decimals: int,
        supply: int,
        *,
        mint_authority_revoked: bool,
        freeze_authority_revoked: bool,
    ) -> Token:
        if not symbol or len(symbol) > 10 or not symbol.isascii() or not symbol.isalnum():
            raise LaunchRejected(f"symbol: expected 1-10 ASCII letters or digits, got {symbol!r}")
        if not 0 <= decimals <= 9:
            raise LaunchRejected(f"decimals: expected 0..9, got {decimals}")
        if not 0 < supply <= U64_MAX:
            raise LaunchRejected(f"supply: expected 1..{U64_MAX} base units, got {supply}")
        self._count += 1
        mint = _launch_key(self.seed, f"mint:{self._count}:{symbol}").pubkey()
        owner = self.wallet.pubkey()
        account = Mint(
            decimals,
            supply,
            None if mint_authority_revoked else owner,
            None if freeze_authority_revoked else owner,
        )
        self.ledger.set_data(mint, spl.TOKEN_PROGRAM_ID, encode_mint(account), lamports=1_461_600)
        genesis.open_token_account(
            self.ledger, spl.associated_token_address(owner, mint), mint, owner, supply
        )
        token = Token(symbol.upper(), str(mint), decimals)
        self.tokens[token.mint] = token
        return token

    def mint_decimals(self, mint: Pubkey) -> int:
        data = self.ledger.data.get(mint)
        if data is None or self.ledger.owners.get(mint) != spl.TOKEN_PROGRAM_ID:
            raise LaunchRejected(f"{mint} is not a mint on this cluster")
        return decode_mint(data).decimals

    # --- pools -------------------------------------------------------------------------

    def create_pool(
        self, venue: str, base_mint: Pubkey, quote_mint: Pubkey, base_amount: int, quote_amount: int
    ) -> LaunchedPool:
        """Create a ``venue`` pool holding ``base_amount`` and ``quote_amount`` (base
        units); the start price is their ratio."""
        if venue not in VENUES:
            raise LaunchRejected(f"venue: expected one of {', '.join(VENUES)}, got {venue!r}")
        if base_mint == quote_mint:
            raise LaunchRejected("baseMint and quoteToken must differ")
        for name, amount in (("baseAmount", base_amount), ("quoteAmount", quote_amount)):
            if not 0 < amount <= U64_MAX:
                raise LaunchRejected(f"{name}: expected 1..{U64_MAX} base units, got {amount}")
        self.mint_decimals(base_mint)
        self.mint_decimals(quote_mint)
        owner = self.wallet.pubkey()
        self._top_up(base_mint, base_amount)
        self._top_up(quote_mint, quote_amount)
        if venue == "raydium":
            instructions, listing = self._cpmm(base_mint, quote_mint, base_amount, quote_amount)
        else:
            instructions, listing = self._dlmm(base_mint, quote_mint, base_amount, quote_amount)
        budget = [
            spl.set_compute_unit_limit(LAUNCH_CU_LIMIT),
            spl.set_compute_unit_price(LAUNCH_CU_PRICE),
        ]
        blockhash = Hash.from_string(self.cluster.latest_blockhash().blockhash)
        message = MessageV0.try_compile(owner, [*budget, *instructions], [], blockhash)
        tx = VersionedTransaction(message, [self.wallet])
        landed = self.cluster.land_now(bytes(tx))
        if landed.execution.err is not None:
            raise LaunchRejected(
                f"the {venue} initialise transaction failed: {landed.execution.err} "
                f"({'; '.join(landed.execution.logs[-1:])})"
            )
        launched = LaunchedPool(listing, landed.slot, str(tx.signatures[0]))
        if self._on_pool is not None:
            self._on_pool(launched)
        return launched

    def _top_up(self, mint: Pubkey, amount: int) -> None:
        """Faucet: make sure the launchpad holds ``amount`` of ``mint``."""
        owner = self.wallet.pubkey()
        account = self.ledger.tokens.get(spl.associated_token_address(owner, mint))
        held = 0 if account is None else account.amount
        if held < amount:
            genesis.fund(self.ledger, owner, 0, {str(mint): amount - held})

    def _cpmm(
        self, base: Pubkey, quote: Pubkey, base_amount: int, quote_amount: int
    ) -> tuple[list[Instruction], PoolListing]:
        index = cpmm.FEE_TIERS.index(launches.CPMM_LAUNCH_FEE_TIER)
        config = launches.cpmm_config_address(index)
        if config not in self.ledger.data:
            raw = cpmm.encode_amm_config(cpmm.AmmConfig(launches.CPMM_LAUNCH_FEE_TIER, index=index))
            self.ledger.set_data(config, cpmm.PROGRAM_ID, raw, lamports=2_533_440)
        pool = launches.cpmm_pool_addresses(config, base, quote)
        amount_0, amount_1 = (
            (base_amount, quote_amount)
            if pool.token_0_mint == base
            else (quote_amount, base_amount)
        )
        ix = launches.cpmm_initialize_instruction(
            creator=self.wallet.pubkey(),
            config=config,
            pool=pool,
            init_amount_0=amount_0,
            init_amount_1=amount_1,
        )
        listing = cpmm_listing(
            pool.pool, config, pool, self._symbol(pool.token_0_mint, pool.token_1_mint)
        )
        return [ix], listing

    def _dlmm(
        self, base: Pubkey, quote: Pubkey, base_amount: int, quote_amount: int
    ) -> tuple[list[Instruction], PoolListing]:
        step, params = launches.launch_preset()
        owner = self.wallet.pubkey()
        # The base token is X, the quote Y, as launch UIs put them: the price is
        # quote per base, and the start bin is where that price falls.
        mint_x, mint_y = base, quote
        price = quote_amount / base_amount
        active = round(math.log(price) / math.log1p(step / 10_000))
        active = max(params.min_bin_id, min(params.max_bin_id, active))
        pair = dlmm.lb_pair_address(mint_x, mint_y, step)
        if self.ledger.exists(pair):
            raise LaunchRejected(f"a DLMM pair of these mints with bin step {step} exists: {pair}")
        weights = launches.spot_weights(active, DLMM_SPAN_BINS)
        indices = sorted({dlmm.bin_array_index(b) for b, _ in weights})
        instructions = [
            launches.dlmm_initialize_lb_pair_instruction(
                funder=owner,
                mint_x=mint_x,
                mint_y=mint_y,
                bin_step=step,
                base_factor=params.base_factor,
                active_id=active,
            ),
            *(
                launches.dlmm_initialize_bin_array_instruction(funder=owner, lb_pair=pair, index=i)
                for i in indices
            ),
            spl.create_ata_idempotent(owner, owner, mint_x),
            spl.create_ata_idempotent(owner, owner, mint_y),
            launches.dlmm_add_liquidity_by_weight_instruction(
                sender=owner,
                lb_pair=pair,
                mint_x=mint_x,
                mint_y=mint_y,
                liquidity=launches.LiquidityByWeight(base_amount, quote_amount, active, 0, weights),
            ),
        ]
        listing = PoolListing(
            "meteora",
            KIND_DLMM,
            str(pair),
            str(mint_x),
            str(mint_y),
            self._symbol(mint_x, mint_y),
            {
                "reserve_x": str(dlmm.reserve_address(pair, mint_x)),
                "reserve_y": str(dlmm.reserve_address(pair, mint_y)),
                "oracle": str(dlmm.oracle_address(pair)),
            },
        )
        return instructions, listing

    def _symbol(self, a: Pubkey, b: Pubkey) -> str:
        return f"{self._name(a)}/{self._name(b)}"

    def _name(self, mint: Pubkey) -> str:
        known = self.tokens.get(str(mint))
        if known is not None:
            return known.symbol
        for token in genesis.TOKENS.values():
            if token.mint == str(mint):
                return token.symbol
        return str(mint)[:6]

    # --- background launches -------------------------------------------------------------

    def random_launch(self, rng: random.Random) -> LaunchedPool:
        """A new token and its pool on a random venue, paired with SOL, with random
        depth and authorities (the listener has something to watch in ``make run``)."""
        symbol = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(4))
        decimals = 6
        supply = rng.choice((10**9, 10**10)) * 10**decimals
        token = self.create_token(
            symbol,
            decimals,
            supply,
            mint_authority_revoked=rng.random() < 0.8,
            freeze_authority_revoked=rng.random() < 0.8,
        )
        sol = rng.choice((5, 20, 50, 100, 300)) * 10**9
        base = supply * rng.choice((2, 5, 8)) // 10
        venue = rng.choice(VENUES)
        return self.create_pool(venue, Pubkey.from_string(token.mint), spl.WSOL_MINT, base, sol)


def cpmm_listing(
    pool_key: Pubkey, config: Pubkey, pool: launches.CpmmPoolAddresses, symbol: str
) -> PoolListing:
    return PoolListing(
        "raydium",
        KIND_CPMM,
        str(pool_key),
        str(pool.token_0_mint),
        str(pool.token_1_mint),
        symbol,
        {
            "amm_config": str(config),
            "token_0_vault": str(pool.token_0_vault),
            "token_1_vault": str(pool.token_1_vault),
            "observation": str(pool.observation),
        },
    )


class InProcessLaunches:
    """``app.launches.SimLaunches`` over this process's launchpad."""

    def __init__(self, launchpad: Launchpad) -> None:
        self.launchpad = launchpad

    async def create_token(
        self,
        symbol: str,
        decimals: int,
        supply: int,
        *,
        mint_authority_revoked: bool,
        freeze_authority_revoked: bool,
    ) -> Token:
        return self.launchpad.create_token(
            symbol,
            decimals,
            supply,
            mint_authority_revoked=mint_authority_revoked,
            freeze_authority_revoked=freeze_authority_revoked,
        )

    async def mint_decimals(self, mint: str) -> int:
        return self.launchpad.mint_decimals(Pubkey.from_string(mint))

    async def create_pool(
        self, venue: str, base_mint: str, quote_mint: str, base_amount: int, quote_amount: int
    ) -> CreatedPool:
        launched = self.launchpad.create_pool(
            venue,
            Pubkey.from_string(base_mint),
            Pubkey.from_string(quote_mint),
            base_amount,
            quote_amount,
        )
        return CreatedPool(
            launched.listing.venue,
            launched.listing.address,
            launched.slot,
            launched.signature,
            base_mint,
            quote_mint,
        )
