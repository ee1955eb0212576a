"""Contract of ``ports.venue.Venue``: every venue client passes ``VenueContract``.

A venue reads pool state through the Chain port into pure ``PoolSnapshot``
objects and encodes its program's swap instruction. The contract checks the
snapshots' quoting properties, then lands the swap the way the engine does
(``app.txbuilder.build_swap_transaction`` with a one-leg plan) and checks that
the chain paid out exactly what the quote said.

A subclass provides the fixtures

* ``venue``;
* ``chain``: the chain the venue reads, faults off, a still market (nothing
  trades but the tests);
* ``owner``: a ``Keypair`` with plenty of lamports, an existing token account
  with a balance for every non-SOL token of its trades, and no wrapped SOL
  (so that lamports measure SOL exactly and no account rent blurs them);
* ``advance``: see ``chain_support.Advance``;
* ``vault``: ``(snapshot, mint) -> address`` of the token account that holds
  the pool's reserve of ``mint``;
* ``trade``: parametrised over the pairs and sizes to exercise, at least one
  per pool kind and direction the venue offers;

and the methods ``slippage_error`` and ``unfillable_amount``.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from tests.contract.chain_support import (
    Advance,
    advance_simulator,
    landed,
    quiet_sim_config,
    token_delta,
)

from order_engine.adapters.venues import MeteoraVenue, PoolListing, RaydiumVenue
from order_engine.adapters.venues.listing import KIND_AMM_V4, KIND_CPMM
from order_engine.app.txbuilder import FeePolicy, build_swap_transaction
from order_engine.dex.token_accounts import token_account_amount
from order_engine.domain.errors import InsufficientLiquidityError
from order_engine.domain.routing import BPS, Leg, PoolQuote, PoolSnapshot, RoutePlan
from order_engine.domain.tokens import BONK, JUP, SOL, U64_MAX, USDC, USDT, Token
from order_engine.ports.chain import Chain, TransactionResult
from order_engine.ports.venue import Venue
from order_engine.sim import Simulator, build_simulator

VaultOf = Callable[[PoolSnapshot, str], str]
FEES = FeePolicy(compute_units_per_leg=300_000, micro_lamports_per_cu=50_000)
UNLISTED_MINT = str(Pubkey(hashlib.sha256(b"venue-contract/unlisted-mint").digest()))


@dataclass(frozen=True)
class Trade:
    sell: Token
    buy: Token
    amount: int  # base units of ``sell``

    def __str__(self) -> str:
        return f"{self.sell.symbol}->{self.buy.symbol}"


def amounts_up_to_u64(around: int) -> list[int]:
    """A geometric grid over the whole u64 range, densest around ``around``."""
    rng = random.Random(around)
    grid = {int(1.25**e) for e in range(200) if 1.25**e <= U64_MAX} | {U64_MAX}
    grid |= {rng.randint(max(1, around // 10), around * 10) for _ in range(300)}
    return sorted(grid)


def _outputs(snapshot: PoolSnapshot, amounts: list[int]) -> list[int]:
    """The quoted output per amount, 0 where the pool cannot fill it."""
    outputs = []
    for amount in amounts:
        try:
            outputs.append(snapshot.quote(amount).amount_out)
        except InsufficientLiquidityError:
            outputs.append(0)
    return outputs


def received(result: TransactionResult, owner: Pubkey, token: Token) -> int:
    """What ``owner`` gained of ``token`` in the transaction, its fee excluded.

    SOL is wrapped and unwrapped inside the swap transaction, so it shows in
    the fee payer's lamports, not in a token balance.
    """
    gained = token_delta(result, owner, token.mint)
    if token == SOL:
        gained += result.post_lamports - result.pre_lamports + result.fee
    return gained


def one_leg_plan(quote: PoolQuote, min_out: int) -> RoutePlan:
    return RoutePlan(
        hops=((Leg(quote, BPS),),),
        amount_in=quote.amount_in,
        expected_out=quote.amount_out,
        min_out=min_out,
        price_impact_bps=quote.price_impact_bps,
        reason="venue contract: one pool",
    )


@dataclass(frozen=True)
class Desk:
    """What a test needs to read the venue's pools and land its swaps."""

    venue: Venue
    chain: Chain
    owner: Keypair
    advance: Advance
    vault: VaultOf

    async def snapshots(self, trade: Trade) -> list[PoolSnapshot]:
        found = await self.venue.snapshots(trade.sell.mint, trade.buy.mint)
        assert found, f"{self.venue.name} lists {trade} but returned no snapshot"
        return found

    async def fresh(self, trade: Trade, pool_id: str) -> PoolSnapshot:
        (snapshot,) = [s for s in await self.snapshots(trade) if s.pool_id == pool_id]
        return snapshot

    async def vault_balances(self, snapshot: PoolSnapshot) -> tuple[int, int]:
        """(input reserve, output reserve) as the chain holds them now."""
        keys = [
            self.vault(snapshot, snapshot.input_mint),
            self.vault(snapshot, snapshot.output_mint),
        ]
        datas = await self.chain.get_multiple_accounts(keys)
        assert None not in datas, f"vaults {keys} of {snapshot.pool_id} not found"
        vault_in, vault_out = (token_account_amount(cast("bytes", d)) for d in datas)
        return vault_in, vault_out

    async def swap(self, trade: Trade, quote: PoolQuote, *, min_out: int) -> TransactionResult:
        """Build the engine's transaction for one leg, send it and wait until it lands."""
        tx = build_swap_transaction(
            one_leg_plan(quote, min_out),
            payer=self.owner,
            input_mint=trade.sell.mint,
            output_mint=trade.buy.mint,
            blockhash=(await self.chain.get_latest_blockhash()).blockhash,
            venues={self.venue.name: self.venue},
            memo=f"venue-contract {uuid.uuid4()}",
            fees=FEES,
        )
        signature = await self.chain.send_transaction(bytes(tx))
        return await landed(self.chain, self.advance, signature)

    def received(self, result: TransactionResult, token: Token) -> int:
        return received(result, self.owner.pubkey(), token)


class VenueContract:
    """What every ``Venue`` adapter guarantees. Not collected itself (no ``Test`` prefix)."""

    NAME = ""  # the venue's stable name

    @pytest.fixture
    def venue(self) -> Venue:
        raise NotImplementedError("a VenueContract subclass must provide the venue fixture")

    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError("a VenueContract subclass must provide the chain it reads")

    @pytest.fixture
    def owner(self) -> Keypair:
        raise NotImplementedError("a VenueContract subclass must provide a funded owner")

    @pytest.fixture
    def advance(self) -> Advance:
        raise NotImplementedError("a VenueContract subclass must provide the advance hook")

    @pytest.fixture
    def vault(self) -> VaultOf:
        raise NotImplementedError("a VenueContract subclass must locate its pools' vaults")

    @pytest.fixture
    def trade(self) -> Trade:
        raise NotImplementedError("a VenueContract subclass must parametrise its trades")

    @pytest.fixture
    def desk(
        self, venue: Venue, chain: Chain, owner: Keypair, advance: Advance, vault: VaultOf
    ) -> Desk:
        return Desk(venue, chain, owner, advance, vault)

    def slippage_error(self, pool_kind: str) -> str:
        """The error name the venue's program fails with below ``min_amount_out``."""
        raise NotImplementedError

    def unfillable_amount(self, snapshot: PoolSnapshot) -> int:
        """An amount ``snapshot`` cannot fill (beyond its liquidity, or too small to
        yield a single base unit)."""
        raise NotImplementedError

    # --- identity and listing ---------------------------------------------------------------

    async def test_the_venue_name_is_stable_and_stamped_on_its_snapshots_and_quotes(
        self, desk: Desk, trade: Trade
    ) -> None:
        venue = desk.venue
        assert venue.name == self.NAME
        for snapshot in await desk.snapshots(trade):
            assert snapshot.venue == venue.name
            assert snapshot.quote(trade.amount).venue == venue.name
        assert venue.name == self.NAME

    async def test_has_pool_is_symmetric_and_false_for_unlisted_or_identical_mints(
        self, venue: Venue, trade: Trade
    ) -> None:
        sell, buy = trade.sell.mint, trade.buy.mint

        assert venue.has_pool(sell, buy)
        assert venue.has_pool(buy, sell)
        assert not venue.has_pool(sell, UNLISTED_MINT)
        assert not venue.has_pool(UNLISTED_MINT, sell)
        assert not venue.has_pool(sell, sell)
        assert await venue.snapshots(sell, UNLISTED_MINT) == []
        assert await venue.snapshots(sell, sell) == []

    async def test_reading_one_listed_pool_quotes_as_its_snapshot_does_and_unlisted_is_a_key_error(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            read = await desk.venue.read_pool(snapshot.pool_id, trade.sell.mint, trade.buy.mint)

            assert read.pool_id == snapshot.pool_id
            assert read.quote(trade.amount) == snapshot.quote(trade.amount)
        with pytest.raises(KeyError):
            await desk.venue.read_pool(UNLISTED_MINT, trade.sell.mint, trade.buy.mint)

    async def test_snapshots_trade_the_requested_mints_in_the_requested_direction(
        self, desk: Desk, trade: Trade
    ) -> None:
        forward = await desk.snapshots(trade)
        backward = await desk.venue.snapshots(trade.buy.mint, trade.sell.mint)

        for snapshot in forward:
            assert (snapshot.input_mint, snapshot.output_mint) == (trade.sell.mint, trade.buy.mint)
            assert snapshot.pool_kind
        for snapshot in backward:
            assert (snapshot.input_mint, snapshot.output_mint) == (trade.buy.mint, trade.sell.mint)
        pool_ids = [s.pool_id for s in forward]
        assert len(set(pool_ids)) == len(pool_ids)
        assert sorted(pool_ids) == sorted(s.pool_id for s in backward)

    # --- quoting ------------------------------------------------------------------------------

    async def test_a_quote_describes_its_pool_and_gives_less_than_the_pool_holds(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            _, reserve_out = await desk.vault_balances(snapshot)
            quote = snapshot.quote(trade.amount)

            assert (quote.venue, quote.pool_id, quote.pool_kind) == (
                snapshot.venue,
                snapshot.pool_id,
                snapshot.pool_kind,
            )
            assert (quote.input_mint, quote.output_mint) == (trade.sell.mint, trade.buy.mint)
            assert quote.amount_in == trade.amount
            assert 0 < quote.amount_out < reserve_out
            assert 0 <= quote.fee <= quote.amount_in
            assert quote.price_impact_bps >= Decimal(0)

    async def test_quoting_is_deterministic_and_leaves_the_snapshot_unchanged(
        self, desk: Desk, trade: Trade
    ) -> None:
        first = await desk.snapshots(trade)
        before = [s.quote(trade.amount) for s in first]
        for snapshot in first:
            for amount in (trade.amount * 1000, 1, trade.amount // 3):
                with contextlib.suppress(InsufficientLiquidityError):
                    snapshot.quote(amount)
        again = await desk.snapshots(trade)

        assert [s.quote(trade.amount) for s in first] == before
        assert [s.quote(trade.amount) for s in again] == before  # nothing moved on chain

    async def test_the_output_never_decreases_as_the_input_grows(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            previous: PoolQuote | None = None
            for amount in amounts_up_to_u64(trade.amount):
                try:
                    quote = snapshot.quote(amount)
                except InsufficientLiquidityError:
                    continue
                if previous is not None:
                    assert quote.amount_out >= previous.amount_out, (
                        f"{snapshot.pool_kind}: {previous.amount_in} in gives "
                        f"{previous.amount_out} out, but {amount} in gives {quote.amount_out}"
                    )
                previous = quote
            assert previous is not None

    async def test_any_u64_amount_either_quotes_below_the_reserve_or_raises_insufficient_liquidity(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            _, reserve_out = await desk.vault_balances(snapshot)
            for amount in [10**k for k in range(20)] + [U64_MAX]:
                try:
                    quote = snapshot.quote(amount)
                except InsufficientLiquidityError:
                    continue
                assert 0 <= quote.amount_out < reserve_out
                assert 0 <= quote.fee <= amount

    async def test_a_positive_amount_never_quotes_zero_output(
        self, desk: Desk, trade: Trade
    ) -> None:
        # A zero-output quote would let the router "fill" dust for nothing but the fee.
        for snapshot in await desk.snapshots(trade):
            for amount in range(1, 2_000):
                try:
                    quote = snapshot.quote(amount)
                except InsufficientLiquidityError:
                    continue
                assert quote.amount_out > 0, f"{snapshot.pool_kind} quotes {amount} in for 0 out"

    async def test_an_amount_the_pool_cannot_fill_raises_insufficient_liquidity(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            with pytest.raises(InsufficientLiquidityError):
                snapshot.quote(self.unfillable_amount(snapshot))

    # --- landing the swap ----------------------------------------------------------------------

    async def test_a_landed_swap_pays_exactly_the_quoted_output_when_nothing_moved_in_between(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            quote = snapshot.quote(trade.amount)
            vault_in, vault_out = await desk.vault_balances(snapshot)

            result = await desk.swap(trade, quote, min_out=quote.amount_out)

            assert result.err is None, result.logs
            assert desk.received(result, trade.buy) == quote.amount_out
            assert desk.received(result, trade.sell) == -quote.amount_in
            assert await desk.vault_balances(snapshot) == (
                vault_in + quote.amount_in,
                vault_out - quote.amount_out,
            )

    async def test_a_snapshot_taken_after_a_swap_sees_the_pool_it_moved(
        self, desk: Desk, trade: Trade
    ) -> None:
        amounts = amounts_up_to_u64(trade.amount)
        for snapshot in await desk.snapshots(trade):
            quote = snapshot.quote(trade.amount)
            await desk.swap(trade, quote, min_out=quote.amount_out)
            fresh = await desk.fresh(trade, snapshot.pool_id)

            before, after = _outputs(snapshot, amounts), _outputs(fresh, amounts)
            assert before != after, "the fresh snapshot quotes as if the swap had not landed"
            # The pool now holds more input and less output: no amount fares better.
            assert all(a <= b for a, b in zip(after, before, strict=True))

    async def test_a_min_out_above_the_quote_fails_on_chain_with_the_venues_slippage_error(
        self, desk: Desk, trade: Trade
    ) -> None:
        for snapshot in await desk.snapshots(trade):
            quote = snapshot.quote(trade.amount)
            vaults = await desk.vault_balances(snapshot)

            result = await desk.swap(trade, quote, min_out=quote.amount_out + 1)

            assert result.err == self.slippage_error(snapshot.pool_kind)
            assert result.fee > 0
            assert result.pre_lamports - result.post_lamports == result.fee
            assert desk.received(result, trade.buy) == 0
            assert desk.received(result, trade.sell) == 0
            assert await desk.vault_balances(snapshot) == vaults
            assert (await desk.fresh(trade, snapshot.pool_id)).quote(trade.amount) == quote


# --- the simulated venues ------------------------------------------------------------------


def vault_of(listing: PoolListing, mint: str) -> str:
    side_a = mint == listing.mint_a
    if listing.kind == KIND_AMM_V4:
        return listing.keys["coin_vault" if side_a else "pc_vault"]
    if listing.kind == KIND_CPMM:
        return listing.keys["token_0_vault" if side_a else "token_1_vault"]
    return listing.keys["reserve_x" if side_a else "reserve_y"]


class SimulatedVenueContract(VenueContract):
    """The fixtures both simulated venues share: a quiet simulator at time scale 0."""

    @pytest.fixture
    def sim(self) -> Simulator:
        return build_simulator(quiet_sim_config())

    @pytest.fixture
    def chain(self, sim: Simulator) -> Chain:
        return sim.chain

    @pytest.fixture
    def owner(self, sim: Simulator) -> Keypair:
        keypair = Keypair()
        sim.fund(
            keypair.pubkey(),
            lamports=10_000 * 10**9,
            tokens={
                USDC.mint: 10_000_000 * 10**6,
                USDT.mint: 10_000_000 * 10**6,
                BONK.mint: 10**15,
                JUP.mint: 10_000_000 * 10**6,
            },
        )
        return keypair

    @pytest.fixture
    def advance(self, sim: Simulator) -> Advance:
        return advance_simulator(sim)

    @pytest.fixture
    def vault(self, sim: Simulator) -> VaultOf:
        listings = {p.address: p for p in sim.pools}
        return lambda snapshot, mint: vault_of(listings[snapshot.pool_id], mint)


RAYDIUM_TRADES = (
    Trade(SOL, USDC, SOL.to_base(2)),  # AMM v4, SOL wrapped in
    Trade(USDC, SOL, USDC.to_base(300)),  # AMM v4, SOL unwrapped out
    Trade(BONK, SOL, BONK.to_base(10_000_000)),  # CPMM 25 bps
    Trade(JUP, USDC, JUP.to_base(100)),  # CPMM, no SOL on either side
    Trade(USDT, USDC, USDT.to_base(1_000)),  # CPMM 1 bps
)

METEORA_TRADES = (
    Trade(SOL, USDC, SOL.to_base(1)),
    Trade(USDC, SOL, USDC.to_base(150)),
    Trade(SOL, BONK, SOL.to_base("0.5")),
    Trade(USDC, USDT, USDC.to_base(1_000)),
    Trade(JUP, USDC, JUP.to_base(50)),
)


class TestRaydiumVenue(SimulatedVenueContract):
    NAME = "raydium"

    @pytest.fixture
    def venue(self, sim: Simulator) -> Venue:
        return RaydiumVenue(sim.chain, sim.pools)

    @pytest.fixture(params=RAYDIUM_TRADES, ids=str)
    def trade(self, request: pytest.FixtureRequest) -> Trade:
        return cast("Trade", request.param)

    def slippage_error(self, pool_kind: str) -> str:
        return "ExceededSlippage"  # AMM v4 and CPMM name it alike

    def unfillable_amount(self, snapshot: PoolSnapshot) -> int:
        # A constant-product pool fills any u64 amount (at a ruinous price), but
        # one base unit in yields less than one out: nothing to fill.
        return 1


class TestMeteoraVenue(SimulatedVenueContract):
    NAME = "meteora"

    @pytest.fixture
    def venue(self, sim: Simulator) -> Venue:
        return MeteoraVenue(sim.chain, sim.pools)

    @pytest.fixture(params=METEORA_TRADES, ids=str)
    def trade(self, request: pytest.FixtureRequest) -> Trade:
        return cast("Trade", request.param)

    def slippage_error(self, pool_kind: str) -> str:
        return "ExceededAmountSlippageTolerance"

    def unfillable_amount(self, snapshot: PoolSnapshot) -> int:
        return U64_MAX  # more than every bin of the pair holds
