"""The simulator's faucet: airdrops are ordinary transactions on the cluster.

``requestAirdrop`` (SOL, standard) and ``simAirdropTokens`` (non-standard) each
build a transaction signed by the faucet's keypair: a System transfer, or an
idempotent ATA creation plus an SPL Token transfer from the faucet's own token
account. It enters the mempool like any other, lands in a later slot, shows in
``getSignatureStatuses`` and pays its fee, so a client confirms an airdrop the
way it confirms anything else. The faucet pays a priority fee (it lands within a
few slots) and writes a counter in a memo (two equal requests in one slot are
two transactions, not one signature). It never runs dry: before each airdrop it
is topped up at the ledger, as genesis funds accounts.
"""

from __future__ import annotations

import hashlib

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.dex import spl
from order_engine.sim import genesis
from order_engine.sim.cluster import Cluster

FAUCET_RESERVE = 10**18  # lamports the faucet keeps above any single airdrop
FAUCET_CU_LIMIT = 60_000
FAUCET_CU_PRICE = 1_000_000  # micro-lamports per CU: lands with probability ~0.95 per slot


class Faucet:
    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster = cluster
        self.keypair = Keypair.from_seed(hashlib.sha256(f"{seed}:faucet".encode()).digest())
        self.pubkey = self.keypair.pubkey()
        self._count = 0

    def airdrop(self, to: Pubkey, lamports: int) -> str:
        """Send ``lamports`` to ``to``; returns the transaction's signature."""
        self._top_up(lamports)
        return self._send([spl.system_transfer(self.pubkey, to, lamports)])

    def tokens(self, owner: Pubkey, mint: Pubkey, amount: int) -> str:
        """Send ``amount`` base units of ``mint`` into ``owner``'s associated token account."""
        self._top_up(0)
        source = spl.associated_token_address(self.pubkey, mint)
        held = self.cluster.ledger.tokens.get(source)
        have = 0 if held is None else held.amount
        if have < amount:
            genesis.open_token_account(
                self.cluster.ledger, source, mint, self.pubkey, amount - have
            )
        destination = spl.associated_token_address(owner, mint)
        return self._send(
            [
                spl.create_ata_idempotent(self.pubkey, owner, mint),
                spl.token_transfer(source, destination, self.pubkey, amount),
            ]
        )

    def _top_up(self, lamports: int) -> None:
        short = FAUCET_RESERVE + lamports - self.cluster.ledger.balance(self.pubkey)
        if short > 0:
            self.cluster.ledger.credit(self.pubkey, short)

    def _send(self, instructions: list[Instruction]) -> str:
        self._count += 1
        blockhash = Hash.from_string(self.cluster.latest_blockhash().blockhash)
        message = MessageV0.try_compile(
            self.pubkey,
            [
                spl.set_compute_unit_limit(FAUCET_CU_LIMIT),
                spl.set_compute_unit_price(FAUCET_CU_PRICE),
                spl.memo(f"order-engine-sim faucet #{self._count}", self.pubkey),
                *instructions,
            ],
            [],
            blockhash,
        )
        return self.cluster.send(bytes(VersionedTransaction(message, [self.keypair])))
