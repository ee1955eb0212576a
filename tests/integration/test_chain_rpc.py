"""The chain server's wire format and faults, through real HTTP on loopback.

The answers are parsed with solders' RPC response types, which accept exactly
what a Solana node sends; the faults are the simulator's own knobs, turned up
to 1 so that each mapping is seen every time.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast, get_args

import aiohttp
import orjson
import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc import responses as r
from solders.rpc.errors import (
    InvalidParamsMessage,
    RpcCustomErrorFieldless,
    SendTransactionPreflightFailureMessage,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from order_engine.adapters.rpc import RpcChain, RpcUnavailable, ensure_funded, fetch_pool_listing
from order_engine.adapters.rpc.wire import SIM_ERROR_BASE
from order_engine.dex import launches, raydium_amm_v4, spl
from order_engine.dex.spl import associated_token_address
from order_engine.domain.tokens import SOL, USDC
from order_engine.ports.chain import RateLimited, SendTimeout
from order_engine.sim import Simulator, build_simulator
from order_engine.sim.rpc.methods import STATUS_CACHE_SLOTS
from order_engine.sim.rpc.server import ChainServer, start_chain_server
from tests.contract.chain_support import quiet_sim_config, wsol_transfer
from tests.integration.rpc_helpers import settle, signed_swap, venues_over_rpc

T = TypeVar("T")
RPC_ERRORS = get_args(r.RPCError)


def parse(decode: Callable[[str], r.RPCError | T], text: str) -> T:
    """A response decoded by solders, which must not be a JSON-RPC error."""
    found = decode(text)
    assert not isinstance(found, RPC_ERRORS), found
    return found  # type: ignore[return-value]  # narrowed by the assertion above


OWNER_LAMPORTS = 100 * 10**9
OWNER_USDC = 10_000 * 10**6


@pytest.fixture
def sim() -> Simulator:
    return build_simulator(quiet_sim_config())  # time scale 0: status polls drive the clock


@pytest.fixture
async def server(sim: Simulator) -> AsyncIterator[ChainServer]:
    server = await start_chain_server(sim)
    yield server
    await server.close()


@pytest.fixture
async def chain(server: ChainServer) -> AsyncIterator[RpcChain]:
    async with RpcChain(server.url, timeout_s=5) as chain:
        yield chain


@pytest.fixture
async def owner(server: ChainServer) -> Keypair:
    keypair = Keypair()
    tokens = {USDC.mint: OWNER_USDC}
    assert await ensure_funded(server.url, keypair.pubkey(), lamports=OWNER_LAMPORTS, tokens=tokens)
    return keypair


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, str]:
    async with http.post(url, data=orjson.dumps(body)) as response:
        return response.status, await response.text()


async def raw(http: aiohttp.ClientSession, url: str, method: str, *params: Any) -> str:
    status, text = await post(
        http, url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    )
    assert status == 200, text
    return text


# --- the wire format -------------------------------------------------------------------------


async def test_every_answer_parses_as_a_solana_node_answer_and_reports_the_ledger(
    sim: Simulator,
    server: ChainServer,
    chain: RpcChain,
    owner: Keypair,
    http: aiohttp.ClientSession,
) -> None:
    url, me = server.url, str(owner.pubkey())
    usdc_account = str(associated_token_address(owner.pubkey(), Pubkey.from_string(USDC.mint)))
    swap = await signed_swap(
        chain, await venues_over_rpc(url, chain), owner, sell=SOL, buy=USDC, amount=SOL.to_base(1)
    )
    await chain.send_transaction(bytes(swap.tx))
    assert await settle(chain, swap.signature, swap.last_valid_block_height) is not None
    config = {"encoding": "base64"}

    blockhash = parse(
        r.GetLatestBlockhashResp.from_json, await raw(http, url, "getLatestBlockhash")
    )
    height = parse(r.GetBlockHeightResp.from_json, await raw(http, url, "getBlockHeight"))
    slot = parse(r.GetSlotResp.from_json, await raw(http, url, "getSlot"))
    balance = parse(r.GetBalanceResp.from_json, await raw(http, url, "getBalance", me))
    tokens = parse(
        r.GetTokenAccountBalanceResp.from_json,
        await raw(http, url, "getTokenAccountBalance", usdc_account),
    )
    account = parse(
        r.GetAccountInfoResp.from_json, await raw(http, url, "getAccountInfo", usdc_account, config)
    )
    accounts = cast(  # solders' stub types this from_json as GetAccountInfoResp's
        "r.GetMultipleAccountsResp",
        parse(
            r.GetMultipleAccountsResp.from_json,
            await raw(
                http, url, "getMultipleAccounts", [usdc_account, str(Keypair().pubkey())], config
            ),
        ),
    )
    statuses = parse(
        r.GetSignatureStatusesResp.from_json,
        await raw(http, url, "getSignatureStatuses", [swap.signature]),
    )
    as_json = parse(
        r.GetTransactionResp.from_json,
        await raw(
            http,
            url,
            "getTransaction",
            swap.signature,
            {"maxSupportedTransactionVersion": 0, "commitment": "confirmed"},
        ),
    )
    as_base64 = parse(
        r.GetTransactionResp.from_json,
        await raw(
            http,
            url,
            "getTransaction",
            swap.signature,
            {"encoding": "base64", "maxSupportedTransactionVersion": 0, "commitment": "confirmed"},
        ),
    )
    health = parse(r.GetHealthResp.from_json, await raw(http, url, "getHealth"))
    version = parse(r.GetVersionResp.from_json, await raw(http, url, "getVersion"))
    airdrop = parse(r.RequestAirdropResp.from_json, await raw(http, url, "requestAirdrop", me, 1))

    assert str(blockhash.value.blockhash) == sim.cluster.latest_blockhash().blockhash
    assert height.value == slot.value == sim.cluster.slot
    assert balance.value == sim.lamports(owner.pubkey())
    assert int(tokens.value.amount) == sim.token_balance(owner.pubkey(), USDC.mint)
    assert tokens.value.decimals == USDC.decimals
    assert account.value is not None
    assert account.value.data == sim.cluster.account(Pubkey.from_string(usdc_account))
    assert accounts.value[0] == account.value
    assert accounts.value[1] is None
    assert statuses.value[0] is not None
    assert statuses.value[0].err is None
    for found in (as_json, as_base64):
        assert found.value is not None
        meta = found.value.transaction.meta
        assert meta is not None
        assert meta.err is None
        assert meta.pre_balances[0] - meta.post_balances[0] == meta.fee + SOL.to_base(1)
        assert meta.post_token_balances  # the owner's USDC account, at least
    assert as_base64.value is not None
    assert as_base64.value.transaction.transaction == swap.tx
    assert health.value == "ok"
    assert version.value.solana_core
    Signature.from_string(str(airdrop.value))


def b64(tx: VersionedTransaction | bytes) -> str:
    return base64.b64encode(bytes(tx)).decode()


B64 = {"encoding": "base64"}


async def test_refusals_at_send_carry_the_error_shapes_of_a_real_node(
    server: ChainServer, chain: RpcChain, owner: Keypair, http: aiohttp.ClientSession
) -> None:
    url, recipient = server.url, Keypair().pubkey()
    blockhash = (await chain.get_latest_blockhash()).blockhash
    good = wsol_transfer(owner, recipient, 1000, blockhash=blockhash, memo="shapes")
    stale = wsol_transfer(owner, recipient, 1000, blockhash=str(Hash.new_unique()), memo="stale")
    forged = VersionedTransaction.populate(
        good.message, [Keypair().sign_message(to_bytes_versioned(good.message))]
    )
    signature = await chain.send_transaction(bytes(good))
    assert await settle(chain, signature, 10**9) is not None

    def send(tx: VersionedTransaction | bytes) -> Any:
        return raw(http, url, "sendTransaction", b64(tx), B64)

    unknown = r.SendTransactionResp.from_json(await send(stale))
    bad_signature = r.SendTransactionResp.from_json(await send(forged))
    junk = r.SendTransactionResp.from_json(await send(b"not a transaction"))
    again = r.SendTransactionResp.from_json(await send(good))

    assert isinstance(unknown, SendTransactionPreflightFailureMessage)
    assert unknown.message == "Transaction simulation failed: Blockhash not found"
    assert bad_signature == RpcCustomErrorFieldless.TransactionSignatureVerificationFailure
    assert isinstance(junk, InvalidParamsMessage)
    assert isinstance(again, SendTransactionPreflightFailureMessage)
    assert "already been processed" in again.message
    assert await chain.send_transaction(bytes(good)) == signature  # the port's reading of it


async def test_skip_preflight_answers_a_forged_transaction_with_its_signature_and_never_lands_it(
    sim: Simulator,
    server: ChainServer,
    chain: RpcChain,
    owner: Keypair,
    http: aiohttp.ClientSession,
) -> None:
    latest = await chain.get_latest_blockhash()
    good = wsol_transfer(owner, Keypair().pubkey(), 1000, blockhash=latest.blockhash, memo="skip")
    forgery = Keypair().sign_message(to_bytes_versioned(good.message))
    forged = VersionedTransaction.populate(good.message, [forgery])

    answer = await raw(
        http, server.url, "sendTransaction", b64(forged), {**B64, "skipPreflight": True}
    )

    assert parse(r.SendTransactionResp.from_json, answer).value == forgery
    assert await settle(chain, str(forgery), latest.last_valid_block_height) is None
    assert sim.executions(str(forgery)) == 0


async def test_a_program_error_name_survives_the_wire_in_the_status_and_the_transaction(
    server: ChainServer, chain: RpcChain, owner: Keypair, http: aiohttp.ClientSession
) -> None:
    raydium = await venues_over_rpc(server.url, chain, only="raydium")
    swap = await signed_swap(
        chain, raydium, owner, sell=SOL, buy=USDC, amount=SOL.to_base(1), min_out_above_quote=True
    )

    await chain.send_transaction(bytes(swap.tx))
    status = await settle(chain, swap.signature, swap.last_valid_block_height)
    result = await chain.get_transaction(swap.signature)
    wire_status = orjson.loads(
        await raw(http, server.url, "getSignatureStatuses", [swap.signature])
    )

    assert status is not None
    assert result is not None
    assert status.err == result.err == "ExceededSlippage"
    index, error = wire_status["result"]["value"][0]["err"]["InstructionError"]
    message = swap.tx.message
    program = message.account_keys[message.instructions[index].program_id_index]
    assert program == raydium_amm_v4.PROGRAM_ID  # the failing instruction is the swap
    assert error["Custom"] >= SIM_ERROR_BASE
    assert result.pre_lamports - result.post_lamports == result.fee


async def test_a_status_older_than_the_status_cache_needs_the_history_search(
    sim: Simulator,
    server: ChainServer,
    chain: RpcChain,
    owner: Keypair,
    http: aiohttp.ClientSession,
) -> None:
    latest = await chain.get_latest_blockhash()
    tx = wsol_transfer(owner, Keypair().pubkey(), 1000, blockhash=latest.blockhash, memo="old")
    signature = await chain.send_transaction(bytes(tx))
    landed = await settle(chain, signature, latest.last_valid_block_height)
    sim.advance_slots(STATUS_CACHE_SLOTS + 1)

    recent_only = orjson.loads(await raw(http, server.url, "getSignatureStatuses", [signature]))
    (searched,) = await chain.get_signature_statuses([signature])

    assert recent_only["result"]["value"] == [None]
    assert searched is not None
    assert landed is not None
    assert searched.slot == landed.slot


async def test_a_batch_is_answered_call_by_call_in_order(
    sim: Simulator, server: ChainServer, http: aiohttp.ClientSession
) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "getSlot"},
        {"jsonrpc": "2.0", "id": 7, "method": "noSuchMethod"},
        {"jsonrpc": "2.0", "id": None, "method": "getBalance", "params": ["not a key"]},
        {"jsonrpc": "2.0", "id": 9, "method": "getHealth"},
    ]

    status, text = await post(http, server.url, batch)
    answers = orjson.loads(text)

    assert status == 200
    assert [a["id"] for a in answers] == ["a", 7, None, 9]
    assert answers[0]["result"] == sim.cluster.slot
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["error"]["code"] == -32602
    assert answers[3]["result"] == "ok"


async def test_the_pool_list_is_the_one_the_simulator_publishes(
    sim: Simulator, server: ChainServer
) -> None:
    assert await fetch_pool_listing(server.url) == sim.pools


# --- funding -----------------------------------------------------------------------------------


async def test_ensure_funded_tops_up_to_the_targets_and_asks_for_nothing_once_they_are_met(
    sim: Simulator, server: ChainServer
) -> None:
    wallet = Keypair().pubkey()

    async def fund(lamports: int, usdc: int) -> None:
        assert await ensure_funded(server.url, wallet, lamports=lamports, tokens={USDC.mint: usdc})

    await fund(3 * 10**9, 500)
    first = (sim.lamports(wallet), sim.token_balance(wallet, USDC.mint))
    slot = sim.cluster.slot
    await fund(3 * 10**9, 500)
    unchanged = (sim.lamports(wallet), sim.token_balance(wallet, USDC.mint))
    quiet = sim.cluster.slot == slot  # no airdrop, so nothing to wait for at scale 0
    await fund(5 * 10**9, 200)  # more SOL, fewer tokens than held: only SOL moves

    assert first == unchanged == (3 * 10**9, 500)
    assert quiet
    assert (sim.lamports(wallet), sim.token_balance(wallet, USDC.mint)) == (5 * 10**9, 500)


async def test_ensure_funded_gets_through_transient_faults(
    sim: Simulator, server: ChainServer
) -> None:
    sim.faults.transient_failure_rate = 0.3
    sim.faults.rate_limit_rate = 0.3
    wallet = Keypair().pubkey()

    assert await ensure_funded(server.url, wallet, lamports=10**9, tokens={USDC.mint: 10**6})

    assert (sim.lamports(wallet), sim.token_balance(wallet, USDC.mint)) == (10**9, 10**6)
    assert sim.chain.faults.injected.get("unavailable", 0) > 0


# --- faults ------------------------------------------------------------------------------------


async def test_an_unavailable_node_is_rpc_unavailable_for_reads_and_ambiguous_for_a_send(
    sim: Simulator,
    server: ChainServer,
    chain: RpcChain,
    owner: Keypair,
    http: aiohttp.ClientSession,
) -> None:
    latest = await chain.get_latest_blockhash()
    tx = wsol_transfer(owner, Keypair().pubkey(), 1000, blockhash=latest.blockhash, memo="503")
    sim.faults.transient_failure_rate = 1.0

    with pytest.raises(RpcUnavailable):
        await chain.get_block_height()
    with pytest.raises(SendTimeout):
        await chain.send_transaction(bytes(tx))
    status, _ = await post(http, server.url, {"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
    sim.faults.transient_failure_rate = 0.0

    assert status == 503
    assert await settle(chain, str(tx.signatures[0]), latest.last_valid_block_height) is None


async def test_a_rate_limited_account_read_raises_rate_limited_while_other_calls_answer(
    sim: Simulator, server: ChainServer, chain: RpcChain, http: aiohttp.ClientSession
) -> None:
    sim.faults.rate_limit_rate = 1.0
    body = {"jsonrpc": "2.0", "id": 1, "method": "getAccountInfo", "params": [USDC.mint, B64]}

    with pytest.raises(RateLimited):
        await chain.get_multiple_accounts([USDC.mint])
    height = await chain.get_block_height()
    async with http.post(server.url, data=orjson.dumps(body)) as response:
        status, retry_after = response.status, response.headers.get("Retry-After")

    assert height == sim.cluster.slot
    assert (status, retry_after) == (429, "1")


@pytest.mark.parametrize(("ambiguous_share", "lands"), [(1.0, True), (0.0, False)])
async def test_a_send_that_times_out_is_resolved_by_the_signature_status_alone(
    sim: Simulator, chain: RpcChain, owner: Keypair, ambiguous_share: float, lands: bool
) -> None:
    swap = await signed_swap(
        chain,
        await venues_over_rpc(chain.url, chain),
        owner,
        sell=SOL,
        buy=USDC,
        amount=SOL.to_base(1),
    )
    sim.faults.send_timeout_rate = 1.0
    sim.faults.ambiguous_share = ambiguous_share

    with pytest.raises(SendTimeout):
        await chain.send_transaction(bytes(swap.tx))
    sim.faults.send_timeout_rate = 0.0
    status = await settle(chain, swap.signature, swap.last_valid_block_height)

    assert (status is not None) is lands
    assert sim.executions(swap.signature) == int(lands)
    if lands:
        assert await chain.send_transaction(bytes(swap.tx)) == swap.signature
        assert sim.executions(swap.signature) == 1  # the rebroadcast executed nothing


async def test_launch_history_and_fee_history_parse_as_a_solana_node_answers(
    sim: Simulator,
    server: ChainServer,
    chain: RpcChain,
    owner: Keypair,
    http: aiohttp.ClientSession,
) -> None:
    url = server.url
    token = sim.launchpad.create_token(
        "NEWT", 6, 10**15, mint_authority_revoked=True, freeze_authority_revoked=True
    )
    launched = sim.launchpad.create_pool(
        "raydium", Pubkey.from_string(token.mint), spl.WSOL_MINT, 10**14, 10**11
    )
    swap = await signed_swap(
        chain, await venues_over_rpc(url, chain), owner, sell=SOL, buy=USDC, amount=SOL.to_base(1)
    )
    await chain.send_transaction(bytes(swap.tx))
    assert await settle(chain, swap.signature, swap.last_valid_block_height) is not None
    witness = str(launches.CPMM_CREATE_POOL_FEE)

    history = parse(
        r.GetSignaturesForAddressResp.from_json,
        await raw(http, url, "getSignaturesForAddress", witness, {"commitment": "confirmed"}),
    )
    fees = parse(
        r.GetRecentPrioritizationFeesResp.from_json,
        await raw(http, url, "getRecentPrioritizationFees", [str(owner.pubkey())]),
    )
    status, too_many = await post(
        http,
        url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getSignaturesForAddress",
            "params": [witness, {"limit": 5000}],
        },
    )

    assert [str(h.signature) for h in history.value] == [launched.signature]
    assert history.value[0].slot == launched.slot
    swap_slot = sim.cluster.landed(swap.signature)
    assert swap_slot is not None
    assert any(f.slot == swap_slot.slot and f.prioritization_fee > 0 for f in fees.value)
    assert status == 200
    assert "limit" in orjson.loads(too_many)["error"]["message"]
