"""``order-engine chain`` as its own process, reached only over loopback HTTP:
it identifies as the simulator, funds a wallet, confirms the engine's swap,
resolves an ambiguous send through the signature status, and exits 0 on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from order_engine.adapters.rpc import RpcChain, ensure_funded
from order_engine.dex.spl import TOKEN_ACCOUNT_RENT, associated_token_address
from order_engine.domain.tokens import SOL, USDC
from order_engine.ports.chain import SendTimeout
from tests.contract.chain_support import token_delta
from tests.integration.rpc_helpers import settle, signed_swap, venues_over_rpc

ORDER_ENGINE = Path(sys.executable).parent / "order-engine"
TIME_SCALE = 0.02  # 8 ms slots: a blockhash's 150 blocks pass in about 1.2 s
START_WITHIN_S = 20.0
STOP_WITHIN_S = 10.0
OWNER_LAMPORTS = 10 * 10**9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(url: str) -> bool:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"})
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310
            return bool(orjson.loads(response.read())["result"] == "ok")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def chain_process(cwd: Path, *options: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``order-engine chain --port <free>`` with transient faults and rate limits off
    (each test turns on what it exercises), killed if a test leaves it running."""
    port = free_port()
    env = {
        **os.environ,
        "SIM_TIME_SCALE": str(TIME_SCALE),
        "SIM_SEED": "11",
        "SIM_TRANSIENT_FAILURE_RATE": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [str(ORDER_ENGINE), "chain", "--port", str(port), "--rate-limit-rate", "0"]
    process = subprocess.Popen(  # noqa: S603 - our own entry point
        [*command, *options],
        cwd=cwd,  # away from any developer's .env
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_WITHIN_S
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate(timeout=STOP_WITHIN_S)
                pytest.fail(f"order-engine chain did not come up at {url}: {err.decode()[-2000:]}")
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=STOP_WITHIN_S)


@pytest.fixture(scope="module")
def quiet_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chain_process(tmp_path_factory.mktemp("chain"), "--send-timeout-rate", "0") as (_, url):
        yield url


@pytest.fixture
async def chain(quiet_chain: str) -> AsyncIterator[RpcChain]:
    async with RpcChain(quiet_chain, timeout_s=5) as chain:
        yield chain


async def usdc_held(chain: RpcChain, owner: Pubkey) -> int:
    account = associated_token_address(owner, Pubkey.from_string(USDC.mint))
    return await chain.get_token_account_balance(account) or 0


async def test_the_process_identifies_as_the_simulator_and_answers_health_checks(
    quiet_chain: str, chain: RpcChain
) -> None:
    version = await chain.get_version()
    assert version["order-engine-sim"] is True
    assert version["solana-core"]
    health = await chain.read("getHealth", [])
    async with aiohttp.ClientSession() as http, http.get(f"{quiet_chain}/health") as response:
        plain = await response.text()

    assert health == "ok"
    assert plain == "ok"


async def test_a_wallet_funded_by_the_process_swaps_and_the_fill_is_confirmed_over_rpc(
    quiet_chain: str, chain: RpcChain
) -> None:
    owner = Keypair()
    assert await ensure_funded(quiet_chain, owner.pubkey(), lamports=OWNER_LAMPORTS, tokens={})
    amount = SOL.to_base(1)
    venues = await venues_over_rpc(quiet_chain, chain)
    swap = await signed_swap(chain, venues, owner, sell=SOL, buy=USDC, amount=amount)

    assert await chain.send_transaction(bytes(swap.tx)) == swap.signature
    status = await settle(chain, swap.signature, swap.last_valid_block_height)
    result = await chain.get_transaction(swap.signature)

    assert status is not None
    assert status.err is None
    assert result is not None
    assert result.err is None
    assert token_delta(result, owner.pubkey(), USDC.mint) >= swap.plan.min_out
    # The owner paid the amount, the fee and the rent of the USDC account the swap opened.
    assert result.pre_lamports - result.post_lamports == amount + result.fee + TOKEN_ACCOUNT_RENT
    assert await usdc_held(chain, owner.pubkey()) == token_delta(result, owner.pubkey(), USDC.mint)


@pytest.mark.parametrize(("ambiguous_share", "lands"), [("1", True), ("0", False)])
async def test_a_send_that_times_out_is_resolved_through_the_signature_status(
    tmp_path: Path, ambiguous_share: str, lands: bool
) -> None:
    options = ("--send-timeout-rate", "1", "--ambiguous-share", ambiguous_share)
    with chain_process(tmp_path, *options) as (_, url):
        async with RpcChain(url, timeout_s=5) as chain:
            owner = Keypair()
            assert await ensure_funded(url, owner.pubkey(), lamports=OWNER_LAMPORTS, tokens={})
            venues = await venues_over_rpc(url, chain)
            swap = await signed_swap(chain, venues, owner, sell=SOL, buy=USDC, amount=10**9)

            with pytest.raises(SendTimeout):
                await chain.send_transaction(bytes(swap.tx))
            status = await settle(chain, swap.signature, swap.last_valid_block_height)
            with pytest.raises(SendTimeout):  # a rebroadcast of the same bytes
                await chain.send_transaction(bytes(swap.tx))
            result = await chain.get_transaction(swap.signature)
            held = await usdc_held(chain, owner.pubkey())

    assert (status is not None) is lands
    assert (result is not None) is lands
    if result is not None:
        assert result.err is None
        assert held == token_delta(result, owner.pubkey(), USDC.mint) > 0  # filled once
    else:
        assert held == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_process_with_exit_code_zero(
    tmp_path: Path, signum: signal.Signals
) -> None:
    with chain_process(tmp_path) as (process, url):
        process.send_signal(signum)
        code = process.wait(timeout=STOP_WITHIN_S)

        assert code == 0
        assert not healthy(url)
