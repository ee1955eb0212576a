"""Fault 5: the chain process restarts, and sends are ambiguous. Exactly-once holds.

The simulator keeps its state in memory, so a restarted chain process is a new
cluster: it has never seen the old cluster's blockhashes or transactions, and
the wallet's funds are gone with them (the test funds the wallet again, as an
operator of a real cluster would not need to). What exactly-once means then:

* a transaction signed against the old cluster can never land on the new one;
  the engine re-signs an order only once the new cluster's block height has
  passed the old transaction's ``lastValidBlockHeight`` (checked here from the
  blockhash each re-signed transaction carries, not from the engine's notes);
* within a cluster, no order executes twice;
* every order still ends in exactly one terminal state.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.clients import funded_wallet, submit_batch
from tests.faults.conftest import Deployment
from tests.faults.invariants import (
    assert_invariants,
    assert_re_signed_only_after_expiry,
    load_orders,
    signature_statuses,
    statuses_by_order,
    wait_all_terminal,
)
from tests.faults.procs import eventually, rpc

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


async def test_a_chain_restart_loses_the_old_cluster_and_orders_are_re_signed_once_on_the_new(
    deployment: Deployment,
) -> None:
    # Slow slots (80 ms: a blockhash lives 12 s) and sends that never arrive, so
    # every order is left waiting on a transaction that only the old cluster knows.
    stack = deployment.stack(RECONCILE_INTERVAL_S="1", RECONCILE_STALE_S="2")
    old_chain, url = await stack.chain(
        "--send-timeout-rate", "1", "--ambiguous-share", "0", seed=101, time_scale=0.2
    )
    stack.env["SOLANA_RPC_URL"] = url
    await funded_wallet(url, deployment.workdir / "wallet.json")
    (_, api), _ = await asyncio.gather(stack.api(), stack.worker(concurrency=10))
    ids = await submit_batch(api, 10)
    await eventually(
        lambda: _all_submitted(deployment.database_url, ids),
        timeout=30,
        what="every order waiting on its first transaction",
        context=stack.context,
    )
    orders_before = list((await load_orders(deployment.database_url)).values())
    first = {o.id: o.signatures[0] for o in orders_before}
    assert set((await signature_statuses(url, list(first.values()))).values()) == {None}

    old_chain.kill()
    # A new cluster on the same port: another genesis (seed), quicker slots (12 ms).
    _, new_url = await stack.chain(port=int(url.rsplit(":", 1)[1]), seed=202, time_scale=0.03)
    restarted_at = time.monotonic()
    funded = await funded_wallet(new_url, deployment.workdir / "wallet.json")
    # Funded before any order could be re-signed, or the first re-signed sends
    # would be refused for want of a fee (an artefact of the simulator's memory).
    valid_through = min(o.events[-1].details["lastValidBlockHeight"] for o in orders_before)
    assert await rpc(new_url, "getBlockHeight", []) < valid_through
    await wait_all_terminal(deployment.database_url, ids, timeout=90, context=stack.context)
    recovery = time.monotonic() - restarted_at

    orders, report = await assert_invariants(
        deployment.database_url, new_url, ids, owner=funded.owner, usdc_before=funded.usdc_before
    )
    assert report.confirmed == len(ids), [o.error_message for o in orders.values()]
    # Each order's first transaction is unknown to the new cluster, and was replaced
    # only after the new cluster's height passed the height it was valid through.
    assert await assert_re_signed_only_after_expiry(new_url, orders) == len(ids)
    assert {o.signatures[0] for o in orders.values()} == set(first.values())
    heights = await rpc(new_url, "getBlockHeight", [])
    print(
        f"\nchain restart: {len(ids)} orders re-signed once and confirmed on the new cluster "
        f"{recovery:.1f} s after it started (height now {heights}); {report}"
    )


async def test_ambiguous_sends_land_each_order_exactly_once(deployment: Deployment) -> None:
    # Every sendTransaction times out (HTTP 504); one in 25 did reach the leader
    # first. The engine cannot tell which: it rebroadcasts the same bytes while the
    # blockhash is valid, and re-signs only after it expired with the signature
    # unseen, which happens to about a third of the transactions here.
    stack = deployment.stack()
    _, url = await stack.chain(
        "--send-timeout-rate", "1", "--ambiguous-share", "0.04", seed=303, time_scale=0.05
    )
    stack.env["SOLANA_RPC_URL"] = url
    funded = await funded_wallet(url, deployment.workdir / "wallet.json")
    (_, api), worker = await asyncio.gather(stack.api(), stack.worker(concurrency=20))
    ids = await submit_batch(api, 20)
    await wait_all_terminal(deployment.database_url, ids, timeout=150, context=stack.context)

    orders, report = await assert_invariants(
        deployment.database_url, url, ids, owner=funded.owner, usdc_before=funded.usdc_before
    )
    re_signed = await assert_re_signed_only_after_expiry(url, orders)
    assert re_signed >= 1
    # Four transactions that all expired unseen give up with blockhash_expired;
    # nothing of such an order executed (assert_invariants), so that is allowed.
    failed = {o.error_code for o in orders.values() if o.status == "failed"}
    assert failed <= {"blockhash_expired"}, failed
    assert report.confirmed >= len(ids) // 2, report
    uncertain = len(worker.events("broadcast_uncertain"))
    print(
        f"\nambiguous sends: {uncertain} sends timed out, {report.signed} transactions signed "
        f"for {len(ids)} orders ({re_signed} re-signed after expiry), each order executed at "
        f"most once; {report}"
    )


async def _all_submitted(database_url: str, ids: list[str]) -> bool:
    statuses = await statuses_by_order(database_url)
    return all(statuses.get(i) == "submitted" for i in ids)
