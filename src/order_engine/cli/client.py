"""The seed's client test, as ``order-engine submit``: POST, then follow the stream."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import typer

STATUS_COLOURS = {
    "pending": typer.colors.WHITE,
    "routing": typer.colors.CYAN,
    "building": typer.colors.BLUE,
    "submitted": typer.colors.MAGENTA,
    "confirmed": typer.colors.GREEN,
    "failed": typer.colors.RED,
    "open": typer.colors.YELLOW,
    "triggered": typer.colors.CYAN,
    "expired": typer.colors.RED,
    "cancelled": typer.colors.RED,
}


def describe(event: dict[str, Any]) -> str:
    status = event.get("status", "?")
    if status == "pending":
        return f"{event.get('amountIn')} {event.get('inputToken')} -> {event.get('outputToken')}"
    if status == "routing":
        quotes = ", ".join(
            f"{q['venue']}/{q['poolKind']} {q['amountOut']}" for q in event.get("quotes", [])
        )
        plan = event.get("plan", {})
        return f"quotes: {quotes or 'none'}; chose {plan.get('dex')} ({plan.get('reason')})"
    if status == "building":
        legs = ", ".join(f"{leg['venue']} {leg['percent']}%" for leg in event.get("legs", []))
        return (
            f"{event.get('dex')} [{legs}] expect {event.get('expectedAmountOut')}, "
            f"min {event.get('minAmountOut')}"
        )
    if status == "submitted":
        return f"txHash {event.get('txHash')}"
    if status == "confirmed":
        return (
            f"{event.get('amountIn')} -> {event.get('amountOut')} on {event.get('dex')} "
            f"at {event.get('executedPrice')} in slot {event.get('slot')}"
            + (f" (trigger slot {event['triggerSlot']})" if "triggerSlot" in event else "")
            + f", fee {event.get('feeLamports')} lamports (tx {event.get('txHash')})"
        )
    if status == "failed":
        return f"{event.get('code')}: {event.get('error')} after {event.get('attempts')} attempt(s)"
    if status in ("open", "triggered", "expired", "cancelled"):
        return _waiting(status, event)
    return ""


def _waiting(status: str, event: dict[str, Any]) -> str:
    """A waiting order's events: what it waits for, what fired it, how it ended."""
    cancel = f"(cancel: order-engine cancel {event.get('orderId')})"
    if status == "open" and event.get("failedFilter"):
        return (
            f"pool {event.get('poolRejected')} on {event.get('dex')} failed "
            f"{event.get('failedFilter')}: {event.get('reason')}; still waiting"
        )
    if status == "open" and "reason" in event:
        return f"waiting again: {event['reason']}"
    if status == "open" and str(event.get("waitingFor", "")).startswith("pool"):
        return f"waiting for {event['waitingFor']} {cancel}"
    if status == "open":
        expiry = f", until {event['expiresAt']}" if event.get("expiresAt") else ""
        return (
            f"waiting for {event.get('minAmountOut')} out at limit {event.get('limitPrice')}"
            f"{expiry} {cancel}"
        )
    if status == "triggered" and event.get("trigger") == "pool":
        return (
            f"new {event.get('dex')} pool {event.get('pool')} (slot {event.get('slot')}, "
            f"liquidity {event.get('liquidity')}, impact {event.get('priceImpactBps')} bps)"
        )
    if status == "triggered":
        return f"price {event.get('priceSeen')} on {event.get('dex')} at slot {event.get('slot')}"
    return str(event.get("reason", ""))


async def cancel_order(base_url: str, order_id: str) -> int:
    base = base_url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.delete(f"{base}/api/orders/{order_id}") as response:
                payload = await response.json(content_type=None)
        except aiohttp.ClientError as exc:
            typer.secho(f"cannot reach {base}: {exc}", err=True, fg=typer.colors.RED)
            return 2
    if response.status == 200:
        typer.secho(f"order {order_id} cancelled", fg=typer.colors.GREEN)
        return 0
    typer.secho(
        f"not cancelled ({response.status} {payload.get('code')}): {payload.get('message')}",
        err=True,
        fg=typer.colors.RED,
    )
    return 1 if response.status == 409 else 2


async def submit_and_follow(
    base_url: str, body: dict[str, Any], *, json_output: bool, api_key: str | None = None
) -> int:
    """Returns the process exit code: 0 confirmed, 1 failed, 2 rejected or unreachable."""
    base = base_url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=None, connect=10)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        try:
            async with session.post(f"{base}/api/orders/execute", json=body) as response:
                payload = await response.json(content_type=None)
                if response.status >= 400:
                    typer.secho(
                        f"rejected ({response.status} {payload.get('code')}): "
                        f"{payload.get('message')}",
                        err=True,
                        fg=typer.colors.RED,
                    )
                    return 2
        except aiohttp.ClientError as exc:
            typer.secho(f"cannot reach {base}: {exc}", err=True, fg=typer.colors.RED)
            return 2
        order_id = payload["orderId"]
        typer.echo(f"order {order_id}")
        ws_url = base.replace("http", "ws", 1) + f"/api/orders/execute?orderId={order_id}"
        final: dict[str, Any] = {}
        async with session.ws_connect(ws_url, heartbeat=30) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                event = orjson.loads(message.data)
                if json_output:
                    typer.echo(message.data)
                elif event.get("type") == "error":
                    typer.secho(f"error: {event.get('message')}", fg=typer.colors.RED)
                else:
                    status = event.get("status", "?")
                    typer.secho(
                        f"  {event.get('seq'):>2} {status:<10}",
                        nl=False,
                        fg=STATUS_COLOURS.get(status),
                        bold=True,
                    )
                    typer.echo(f" {describe(event)}")
                final = event
        if final.get("status") == "confirmed":
            if not json_output:
                typer.secho(
                    f"filled on {final['dex']}: {final['amountIn']} {body['inputToken']} -> "
                    f"{final['amountOut']} {body['outputToken']} at {final['executedPrice']}\n"
                    f"txHash {final['txHash']}",
                    fg=typer.colors.GREEN,
                )
            return 0
        return 1
