"""Fixtures for the simulator tests: a quiet simulator at time scale 0 and a funded wallet."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair
from tests.unit.sim.simkit import WALLET_LAMPORTS, quiet_config

from order_engine.domain.tokens import BONK, JUP, USDC, USDT
from order_engine.sim import Simulator, build_simulator


@pytest.fixture
def sim() -> Simulator:
    return build_simulator(quiet_config())


@pytest.fixture
def wallet(sim: Simulator) -> Keypair:
    keypair = Keypair()
    sim.fund(
        keypair.pubkey(),
        lamports=WALLET_LAMPORTS,
        tokens={
            USDC.mint: 10_000_000 * 10**6,
            USDT.mint: 1_000_000 * 10**6,
            BONK.mint: 10**15,
            JUP.mint: 1_000_000 * 10**6,
        },
    )
    return keypair
