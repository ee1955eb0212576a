"""Contract of ``ports.chain.Chain``: every adapter passes ``ChainContract``.

The tests speak only the port, and build their transactions from the System,
Associated Token Account, SPL Token, Memo and Compute Budget programs that
every Solana cluster runs (wrapped SOL needs nothing but lamports), so the same
class runs against the in-process simulator, the simulator behind JSON-RPC
(``order-engine chain``) and devnet.

A subclass provides three fixtures:

* ``chain``: the adapter, with any fault injection turned off;
* ``payer``: a ``Keypair`` holding at least 1 SOL and nothing else that the
  tests touch (a fresh one per test);
* ``advance``: an ``async (blocks) -> None`` that returns once at least
  ``blocks`` more blocks exist: the simulator advances its slot clock, an RPC
  subclass polls ``getBlockHeight`` and sleeps in between.

Venue programs are not needed here: swaps are the Venue contract's business.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from tests.contract.chain_support import (
    RANK,
    TRANSFER_CU_LIMIT,
    TRANSFER_CU_PRICE,
    Advance,
    advance_simulator,
    fee_for,
    landed,
    quiet_sim_config,
    statuses_until,
    token_delta,
    wait_for,
    wsol_transfer,
)

from order_engine.dex import launches, spl
from order_engine.dex.sysvar import CLOCK_SYSVAR_ID, decode_clock
from order_engine.dex.token_accounts import decode_mint, token_account_amount
from order_engine.ports.chain import (
    BlockhashNotFound,
    Chain,
    Commitment,
    TransactionRejected,
)
from order_engine.sim import Simulator, build_simulator

WSOL = str(spl.WSOL_MINT)
AMOUNT = 1_000_000  # lamports wrapped and sent per transfer (0.001 SOL)


def unique_memo() -> str:
    # Two tests' transactions must never share bytes (and so a signature).
    return f"chain-contract {uuid.uuid4()}"


async def transfer(
    chain: Chain, payer: Keypair, recipient: Pubkey, *, send: int | None = None
) -> VersionedTransaction:
    blockhash = (await chain.get_latest_blockhash()).blockhash
    return wsol_transfer(
        payer, recipient, AMOUNT, blockhash=blockhash, memo=unique_memo(), send=send
    )


async def wsol_balance(chain: Chain, owner: Pubkey) -> int | None:
    """The owner's wSOL account balance, ``None`` if the account does not exist."""
    (data,) = await chain.get_multiple_accounts(
        [str(spl.associated_token_address(owner, spl.WSOL_MINT))]
    )
    return None if data is None else token_account_amount(data)


class ChainContract:
    """What every ``Chain`` adapter guarantees. Not collected itself (no ``Test`` prefix)."""

    @pytest.fixture
    def chain(self) -> Chain:
        raise NotImplementedError("a ChainContract subclass must provide the chain fixture")

    @pytest.fixture
    def payer(self) -> Keypair:
        raise NotImplementedError("a ChainContract subclass must provide a funded payer")

    @pytest.fixture
    def advance(self) -> Advance:
        raise NotImplementedError("a ChainContract subclass must provide the advance hook")

    # --- blockhashes and block height ------------------------------------------------------

    async def test_the_latest_blockhash_is_valid_at_least_until_the_current_block_height(
        self, chain: Chain
    ) -> None:
        height = await chain.get_block_height()
        latest = await chain.get_latest_blockhash()

        assert str(Hash.from_string(latest.blockhash)) == latest.blockhash
        assert latest.last_valid_block_height >= height

    async def test_block_height_never_goes_backwards_and_grows_as_blocks_pass(
        self, chain: Chain, advance: Advance
    ) -> None:
        heights = [await chain.get_block_height()]
        first = await chain.get_latest_blockhash()
        for _ in range(3):
            await advance(2)
            heights += [await chain.get_block_height(), await chain.get_block_height()]
        later = await chain.get_latest_blockhash()

        assert heights == sorted(heights)
        assert heights[-1] >= heights[0] + 6
        assert later.blockhash != first.blockhash
        assert later.last_valid_block_height > first.last_valid_block_height

    async def test_waiting_for_a_slot_returns_as_soon_as_one_passes_and_the_current_one_on_timeout(
        self, chain: Chain, advance: Advance
    ) -> None:
        now = await chain.wait_for_slot(2**62, 0.01)  # none past that: the current slot
        assert now < 2**62
        waiting = asyncio.ensure_future(chain.wait_for_slot(now, 30))
        await asyncio.sleep(0)
        await advance(1)
        assert await asyncio.wait_for(waiting, 30) > now

    # --- sending and landing ---------------------------------------------------------------

    async def test_sending_a_signed_transaction_returns_its_first_signature_in_base58(
        self, chain: Chain, payer: Keypair
    ) -> None:
        tx = await transfer(chain, payer, Keypair().pubkey())

        signature = await chain.send_transaction(bytes(tx))

        assert signature == str(tx.signatures[0])
        assert Signature.from_string(signature) == tx.signatures[0]

    async def test_waiting_for_a_signature_reports_it_once_it_lands_and_none_while_unseen(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        tx = await transfer(chain, payer, Keypair().pubkey())
        signature = str(tx.signatures[0])
        assert await chain.wait_for_signature(signature, 0.01) is None  # not sent: unseen
        await chain.send_transaction(bytes(tx))
        status = None
        for _ in range(200):
            status = await chain.wait_for_signature(signature, 0.05)
            if status is not None and status.confirmation_status is not Commitment.PROCESSED:
                break
            await advance(1)
        assert status is not None
        assert status.confirmation_status is not Commitment.PROCESSED
        assert status.err is None
        assert (await chain.get_signature_statuses([signature]))[0] is not None

    async def test_a_sent_transaction_goes_from_no_status_to_finalized_and_never_back(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        tx = await transfer(chain, payer, Keypair().pubkey())
        signature = str(tx.signatures[0])
        assert await chain.get_signature_statuses([signature]) == [None]

        await chain.send_transaction(bytes(tx))
        seen = await statuses_until(chain, advance, signature, Commitment.FINALIZED)

        statuses = [s for s in seen if s is not None]
        assert seen[: len(seen) - len(statuses)] == [None] * (len(seen) - len(statuses)), (
            f"once a status appeared it must not vanish: {seen}"
        )
        ranks = [RANK[s.confirmation_status] for s in statuses]
        assert ranks == sorted(ranks), f"commitment went backwards: {statuses}"
        assert statuses[-1].confirmation_status == Commitment.FINALIZED
        assert {s.slot for s in statuses} == {statuses[0].slot}
        assert {s.err for s in statuses} == {None}

    async def test_a_confirmed_transaction_reports_slot_fee_and_the_balances_behind_its_amounts(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        tx = await transfer(chain, payer, recipient)
        signature = str(tx.signatures[0])
        assert await chain.get_transaction(signature) is None

        await chain.send_transaction(bytes(tx))
        status = await wait_for(chain, advance, signature)
        result = await chain.get_transaction(signature)

        assert result is not None
        assert (result.signature, result.slot, result.err) == (signature, status.slot, None)
        assert result.fee >= spl.LAMPORTS_PER_SIGNATURE * len(tx.signatures)
        assert result.fee == fee_for(tx, TRANSFER_CU_LIMIT, TRANSFER_CU_PRICE)
        assert token_delta(result, recipient, WSOL) == AMOUNT
        assert token_delta(result, payer.pubkey(), WSOL) == 0  # wrapped, sent, closed
        # The payer paid the fee, the amount and the rent of the account it created;
        # its own wSOL account's rent came back when it closed the account.
        assert result.pre_lamports - result.post_lamports == (
            result.fee + AMOUNT + spl.TOKEN_ACCOUNT_RENT
        )
        assert await wsol_balance(chain, recipient) == AMOUNT

    async def test_sending_the_same_bytes_again_is_not_an_error_and_executes_once(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        raw = bytes(await transfer(chain, payer, recipient))

        first = await chain.send_transaction(raw)
        while_pending = await chain.send_transaction(raw)
        status = await wait_for(chain, advance, first)
        after_landing = await chain.send_transaction(raw)
        await advance(5)

        assert first == while_pending == after_landing
        assert await wsol_balance(chain, recipient) == AMOUNT  # not twice the amount
        (again,) = await chain.get_signature_statuses([first])
        assert again is not None
        assert again.slot == status.slot  # the landing it had, not a second one

    async def test_a_blockhash_some_blocks_old_is_still_accepted_and_lands(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        tx = await transfer(chain, payer, recipient)
        await advance(10)

        result = await landed(chain, advance, await chain.send_transaction(bytes(tx)))

        assert result.err is None
        assert await wsol_balance(chain, recipient) == AMOUNT

    # --- refusals ---------------------------------------------------------------------------

    async def test_a_message_altered_after_signing_is_rejected_and_never_executes(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        tx = await transfer(chain, payer, recipient)
        raw = bytearray(bytes(tx))
        at = raw.index(b"chain-contract ")
        raw[at] = ord("C")  # same signature, different message

        with pytest.raises(TransactionRejected):
            await chain.send_transaction(bytes(raw))
        await advance(3)

        assert await chain.get_signature_statuses([str(tx.signatures[0])]) == [None]
        assert await wsol_balance(chain, recipient) is None

    async def test_a_transaction_signed_by_the_wrong_key_is_rejected_and_never_executes(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        tx = await transfer(chain, payer, recipient)
        impostor = Keypair().sign_message(to_bytes_versioned(tx.message))
        forged = VersionedTransaction.populate(tx.message, [impostor])
        unsigned = VersionedTransaction.populate(tx.message, [Signature.default()])

        for bad in (forged, unsigned):
            with pytest.raises(TransactionRejected):
                await chain.send_transaction(bytes(bad))
        await advance(3)

        assert await chain.get_signature_statuses([str(impostor)]) == [None]
        assert await wsol_balance(chain, recipient) is None

    async def test_bytes_that_are_not_a_transaction_are_rejected(self, chain: Chain) -> None:
        for junk in (b"", b"not a transaction", secrets.token_bytes(300)):
            with pytest.raises(TransactionRejected):
                await chain.send_transaction(junk)

    async def test_an_unknown_blockhash_is_refused_with_blockhash_not_found(
        self, chain: Chain, payer: Keypair
    ) -> None:
        unknown = str(Hash(secrets.token_bytes(32)))
        tx = wsol_transfer(payer, Keypair().pubkey(), AMOUNT, blockhash=unknown, memo="x")

        with pytest.raises(BlockhashNotFound):
            await chain.send_transaction(bytes(tx))

    async def test_a_blockhash_past_its_last_valid_block_height_is_refused_and_never_executes(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        latest = await chain.get_latest_blockhash()
        tx = wsol_transfer(payer, recipient, AMOUNT, blockhash=latest.blockhash, memo=unique_memo())
        while (height := await chain.get_block_height()) <= latest.last_valid_block_height:
            await advance(latest.last_valid_block_height - height + 1)

        with pytest.raises(BlockhashNotFound):
            await chain.send_transaction(bytes(tx))
        await advance(3)

        assert await chain.get_signature_statuses([str(tx.signatures[0])]) == [None]
        assert await wsol_balance(chain, recipient) is None

    # --- a transaction that fails on chain ---------------------------------------------------

    async def test_a_failing_transaction_lands_with_its_error_reverts_everything_and_pays_the_fee(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        recipient = Keypair().pubkey()
        # The wrap succeeds, then the token transfer asks for one more than was wrapped.
        tx = await transfer(chain, payer, recipient, send=AMOUNT + 1)

        signature = await chain.send_transaction(bytes(tx))
        status = await wait_for(chain, advance, signature)
        result = await chain.get_transaction(signature)

        assert isinstance(status.err, str)
        assert status.err
        assert result is not None
        assert result.err == status.err
        assert result.fee == fee_for(tx, TRANSFER_CU_LIMIT, TRANSFER_CU_PRICE)
        assert result.pre_lamports - result.post_lamports == result.fee
        assert token_delta(result, recipient, WSOL) == 0
        assert token_delta(result, payer.pubkey(), WSOL) == 0
        assert await wsol_balance(chain, payer.pubkey()) is None  # its creation was reverted
        assert await wsol_balance(chain, recipient) is None

    # --- reads --------------------------------------------------------------------------------

    async def test_get_multiple_accounts_answers_in_request_order_with_none_for_missing_accounts(
        self, chain: Chain, payer: Keypair
    ) -> None:
        missing, other_missing = str(Keypair().pubkey()), str(Keypair().pubkey())
        keys = [missing, WSOL, str(payer.pubkey()), other_missing, str(CLOCK_SYSVAR_ID), missing]
        height = await chain.get_block_height()

        datas = await chain.get_multiple_accounts(keys)

        assert len(datas) == len(keys)
        assert [d is None for d in datas] == [True, False, False, True, False, True]
        wsol_mint, wallet, clock = datas[1], datas[2], datas[4]
        assert wsol_mint is not None
        assert decode_mint(wsol_mint).decimals == 9
        assert wallet == b""  # a system account exists, with no data
        assert clock is not None
        assert decode_clock(clock).slot >= height  # a slot is never below the block height
        assert await chain.get_multiple_accounts([]) == []

    async def test_signature_statuses_answer_in_request_order_with_none_for_unknown_signatures(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        tx = await transfer(chain, payer, Keypair().pubkey())
        signature = await chain.send_transaction(bytes(tx))
        status = await wait_for(chain, advance, signature)
        unknown = [str(Keypair().sign_message(b"never sent")) for _ in range(2)]

        statuses = await chain.get_signature_statuses([unknown[0], signature, unknown[1]])

        assert statuses[0] is None
        assert statuses[2] is None
        assert statuses[1] is not None
        assert statuses[1].slot == status.slot
        assert await chain.get_transaction(unknown[0]) is None

    # --- subscriptions and fee history ------------------------------------------------------

    async def test_logs_mentioning_an_address_report_each_transaction_naming_it_once_in_order(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        # Raydium CPMM's create-pool fee account: on every cluster someone follows it.
        followed = launches.CPMM_CREATE_POOL_FEE
        before = await chain.logs_mentioning(str(followed), after=None, timeout_s=0)
        cursor = before[-1].signature if before else None
        sent = []
        for _ in range(2):
            tx = await transfer(chain, payer, followed)
            sent.append(await landed(chain, advance, await chain.send_transaction(bytes(tx))))

        notices = await chain.logs_mentioning(str(followed), after=cursor, timeout_s=0)
        again = await chain.logs_mentioning(str(followed), after=sent[-1].signature, timeout_s=0)

        assert [n.signature for n in notices] == [r.signature for r in sent]
        assert [n.slot for n in notices] == [r.slot for r in sent]
        assert all(n.err is None and n.logs == r.logs for n, r in zip(notices, sent, strict=True))
        assert again == []

    async def test_waiting_for_a_block_height_returns_once_the_chain_is_past_it(
        self, chain: Chain, advance: Advance
    ) -> None:
        start = await chain.get_block_height()

        waiting = asyncio.ensure_future(chain.wait_for_block_height(start + 2, 10.0))
        await advance(3)
        reached = await asyncio.wait_for(waiting, 10.0)
        at_once = await chain.wait_for_block_height(start, 10.0)

        assert reached > start + 2
        assert at_once >= reached

    async def test_recent_prioritization_fees_show_what_a_transaction_on_an_account_paid(
        self, chain: Chain, payer: Keypair, advance: Advance
    ) -> None:
        tx = await transfer(chain, payer, Keypair().pubkey())
        result = await landed(chain, advance, await chain.send_transaction(bytes(tx)))

        fees = await chain.get_recent_prioritization_fees([str(payer.pubkey())])

        assert [f.slot for f in fees] == sorted(f.slot for f in fees)
        at_slot = [f.prioritization_fee for f in fees if f.slot == result.slot]
        assert at_slot == [TRANSFER_CU_PRICE]


class TestSimulatedChain(ChainContract):
    @pytest.fixture
    def sim(self) -> Simulator:
        return build_simulator(quiet_sim_config())

    @pytest.fixture
    def chain(self, sim: Simulator) -> Chain:
        return sim.chain

    @pytest.fixture
    def payer(self, sim: Simulator) -> Keypair:
        keypair = Keypair()
        sim.fund(keypair.pubkey(), lamports=10 * 10**9, tokens={})
        return keypair

    @pytest.fixture
    def advance(self, sim: Simulator) -> Advance:
        return advance_simulator(sim)
