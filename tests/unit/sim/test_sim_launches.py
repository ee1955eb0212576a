"""Launches on the simulated cluster: real mint accounts, pools made by the venue
programs' initialise instructions, found by following the launch witnesses, and
tradable at once (DLMM) or from the next second (CPMM's open time)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, confirm, quiet_config, snapshots

from order_engine.adapters.venues import MeteoraVenue, RaydiumVenue
from order_engine.adapters.venues.launch_watcher import LaunchWatcher
from order_engine.dex import launches, spl
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.token_accounts import decode_mint
from order_engine.domain.tokens import TokenRegistry
from order_engine.ports.venue import Venue
from order_engine.sim import Simulator, build_simulator
from order_engine.sim.launches import LaunchRejected

SUPPLY = 10**9 * 10**6


def land_every_transaction(sim: Simulator) -> None:
    """Landing is a draw per slot; these tests are about which slot, so make it sure."""
    sim.cluster.params = dataclasses.replace(sim.cluster.params, landing_base=1.0)


def newt(sim: Simulator, *, revoked: bool = True) -> Pubkey:
    token = sim.launchpad.create_token(
        "NEWT", 6, SUPPLY, mint_authority_revoked=revoked, freeze_authority_revoked=revoked
    )
    return Pubkey.from_string(token.mint)


def test_a_launched_mint_holds_its_authorities_as_asked(sim: Simulator) -> None:
    held, revoked = newt(sim, revoked=False), newt(sim, revoked=True)
    pad = sim.launchpad.wallet.pubkey()

    kept = decode_mint(sim.ledger.data[held])
    gone = decode_mint(sim.ledger.data[revoked])

    assert (kept.mint_authority, kept.freeze_authority) == (pad, pad)
    assert (gone.mint_authority, gone.freeze_authority) == (None, None)
    assert (gone.decimals, gone.supply) == (6, SUPPLY)
    assert sim.ledger.owners[revoked] == spl.TOKEN_PROGRAM_ID
    assert sim.token_balance(pad, str(revoked)) == SUPPLY


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_pool_is_created_by_the_venue_programs_initialise_transaction(
    sim: Simulator, venue: str
) -> None:
    mint = newt(sim)
    launched = sim.launchpad.create_pool(venue, mint, spl.WSOL_MINT, SUPPLY // 2, 100 * 10**9)

    landed = sim.cluster.landed(launched.signature)
    assert landed is not None
    assert landed.slot == launched.slot == sim.cluster.slot
    assert landed.execution.err is None
    program = cpmm.PROGRAM_ID if venue == "raydium" else dlmm.PROGRAM_ID
    assert sim.ledger.owners[launched.listing.pubkey] == program
    assert any("Instruction: Initialize" in line for line in landed.execution.logs)
    assert launched.listing in sim.pools
    vault_amounts = sorted(
        sim.ledger.tokens[Pubkey.from_string(k)].amount
        for name, k in launched.listing.keys.items()
        if name in ("token_0_vault", "token_1_vault", "reserve_x", "reserve_y")
    )
    assert vault_amounts == [100 * 10**9, SUPPLY // 2]


def test_a_second_pool_of_the_same_pair_and_config_is_refused_and_changes_nothing(
    sim: Simulator,
) -> None:
    mint = newt(sim)
    sim.launchpad.create_pool("raydium", mint, spl.WSOL_MINT, SUPPLY // 2, 10**11)
    before = sim.token_balance(sim.launchpad.wallet.pubkey(), str(mint))

    with pytest.raises(LaunchRejected, match="AccountAlreadyInUse"):
        sim.launchpad.create_pool("raydium", mint, spl.WSOL_MINT, SUPPLY // 4, 10**11)

    assert sim.token_balance(sim.launchpad.wallet.pubkey(), str(mint)) == before


def test_a_launch_of_an_unknown_venue_or_a_missing_mint_is_refused(sim: Simulator) -> None:
    with pytest.raises(LaunchRejected, match="venue"):
        sim.launchpad.create_pool("orca", newt(sim), spl.WSOL_MINT, 1, 1)
    with pytest.raises(LaunchRejected, match="not a mint"):
        sim.launchpad.create_pool("raydium", Keypair().pubkey(), spl.WSOL_MINT, 1, 1)


async def swap_sol_for(sim: Simulator, wallet: Keypair, mint: Pubkey, lamports: int) -> str:
    pools = await snapshots(sim, SOL_MINT, str(mint))
    (pool,) = pools
    quote = pool.quote(lamports)
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim,
        wallet,
        [Leg(quote, 1)],
        blockhash=blockhash,
        input_mint=SOL_MINT,
        output_mint=str(mint),
    )
    return await sim.chain.send_transaction(bytes(tx))


async def test_a_dlmm_pair_trades_in_the_slot_after_its_creation(
    sim: Simulator, wallet: Keypair
) -> None:
    land_every_transaction(sim)
    mint = newt(sim)
    launched = sim.launchpad.create_pool("meteora", mint, spl.WSOL_MINT, SUPPLY // 2, 10**11)

    signature = await swap_sol_for(sim, wallet, mint, 10**9)
    status = await confirm(sim, signature)

    assert status.err is None
    assert status.slot == launched.slot + 1
    assert sim.token_balance(wallet.pubkey(), str(mint)) > 0


async def test_a_cpmm_pool_refuses_swaps_until_its_open_time_then_trades(
    sim: Simulator, wallet: Keypair
) -> None:
    mint = newt(sim)
    launched = sim.launchpad.create_pool("raydium", mint, spl.WSOL_MINT, SUPPLY // 2, 10**11)
    opened = cpmm.decode_pool_state(sim.ledger.data[launched.listing.pubkey]).open_time

    land_every_transaction(sim)
    early = await confirm(sim, await swap_sol_for(sim, wallet, mint, 10**9))
    while sim.cluster.unix_timestamp < opened:
        sim.advance_slots(1)
    late = await confirm(sim, await swap_sol_for(sim, wallet, mint, 10**9 + 1))

    created_at = 1_735_689_600 + int(launched.slot * sim.cluster.params.slot_seconds)
    assert opened == created_at + 1
    assert early.slot == launched.slot + 1  # 0.4 s later: still the creation second
    assert early.err == cpmm.NOT_APPROVED
    assert late.err is None


async def test_the_launch_watcher_finds_every_new_pool_and_the_venues_route_through_it(
    sim: Simulator,
) -> None:
    tokens = TokenRegistry()
    # Venues that know only the genesis pools, as a process started before the launch.
    genesis = list(sim.pools)
    meteora = MeteoraVenue(sim.chain, genesis)
    venues: list[Venue] = [RaydiumVenue(sim.chain, genesis), meteora]
    watcher = LaunchWatcher(sim.chain, venues, tokens)
    assert await watcher.next_launches(0) == []
    mint = newt(sim, revoked=False)

    waiting = asyncio.ensure_future(watcher.next_launches(5))
    await asyncio.sleep(0)
    launched = sim.launchpad.create_pool("meteora", mint, spl.WSOL_MINT, SUPPLY // 2, 10**11)
    (seen,) = await asyncio.wait_for(waiting, 5)

    assert (seen.venue, seen.pool, seen.slot) == (
        "meteora",
        launched.listing.address,
        launched.slot,
    )
    assert seen.reserves == {str(mint): SUPPLY // 2, SOL_MINT: 10**11}
    assert seen.mints[str(mint)].mint_authority == str(sim.launchpad.wallet.pubkey())
    assert seen.mints[SOL_MINT].freeze_authority is None
    assert meteora.has_pool(SOL_MINT, str(mint))
    assert tokens.by_mint(str(mint)).decimals == 6
    assert await watcher.next_launches(0) == []


def test_the_launch_witnesses_are_named_by_every_creation(sim: Simulator) -> None:
    mint = newt(sim)
    for venue, witness in launches.launch_witnesses():
        launched = sim.launchpad.create_pool(venue, mint, spl.WSOL_MINT, SUPPLY // 4, 10**10)
        assert sim.cluster.mentions(witness)[-1].signature == launched.signature


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
async def test_a_swap_on_a_launched_pool_fills_exactly_as_its_quote_said(
    sim: Simulator, wallet: Keypair, venue: str
) -> None:
    land_every_transaction(sim)
    mint = newt(sim)
    sim.launchpad.create_pool(venue, mint, spl.WSOL_MINT, SUPPLY // 2, 50 * 10**9)
    sim.advance_slots(3)  # past CPMM's open time
    (pool,) = await snapshots(sim, SOL_MINT, str(mint))
    quote = pool.quote(2 * 10**9)
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim,
        wallet,
        [Leg(quote, quote.amount_out)],
        blockhash=blockhash,
        input_mint=SOL_MINT,
        output_mint=str(mint),
    )

    status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))

    assert status.err is None
    assert sim.token_balance(wallet.pubkey(), str(mint)) == quote.amount_out


def test_background_launches_bring_new_tokens_and_pools_as_slots_pass() -> None:
    sim = build_simulator(quiet_config(launch_every_slots=1))
    sim.advance_slots(4)

    assert len(sim.launched) == 4
    assert {p.listing.venue for p in sim.launched} <= {"raydium", "meteora"}
    for launched in sim.launched:
        landed = sim.cluster.landed(launched.signature)
        assert landed is not None
        assert landed.execution.err is None
        assert SOL_MINT in (launched.listing.mint_a, launched.listing.mint_b)
