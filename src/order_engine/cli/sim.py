"""``order-engine sim token|pool``: launch tokens and pools on the simulated chain.

They call the engine's admin endpoints (``POST /api/sim/tokens``,
``/api/sim/pools``), so they work against an embedded engine and, in
distributed mode, through any API node to the chain process. Amounts are UI
units, as everywhere in the API. Prints the JSON answer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import aiohttp
import orjson
import typer

app = typer.Typer(help="Launch tokens and pools on the simulated chain.", no_args_is_help=True)

UrlOption = Annotated[str, typer.Option(help="Engine base URL.")]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="ORDER_ENGINE_API_KEY", help="An admin key.")
]


async def _post(url: str, path: str, body: dict[str, Any], api_key: str | None) -> int:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(url.rstrip("/") + path, json=body, headers=headers) as response,
    ):
        payload = orjson.loads(await response.read())
    if response.status >= 400:
        typer.secho(
            f"refused ({response.status} {payload.get('code')}): {payload.get('message')}",
            err=True,
            fg=typer.colors.RED,
        )
        return 2
    typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    return 0


@app.command()
def token(
    symbol: Annotated[str, typer.Argument(help="Ticker, e.g. NEWT.")],
    supply: Annotated[str, typer.Option(help="Whole supply, UI units.")] = "1000000000",
    decimals: Annotated[int, typer.Option(help="Mint decimals (0..9).")] = 6,
    revoke_mint: Annotated[
        bool, typer.Option("--revoke-mint/--keep-mint", help="Revoke the mint authority.")
    ] = True,
    revoke_freeze: Annotated[
        bool, typer.Option("--revoke-freeze/--keep-freeze", help="Revoke the freeze authority.")
    ] = True,
    url: UrlOption = "http://127.0.0.1:3000",
    api_key: KeyOption = None,
) -> None:
    """Create an SPL mint; prints its address (``mint``)."""
    body = {
        "symbol": symbol,
        "decimals": decimals,
        "supply": supply,
        "mintAuthorityRevoked": revoke_mint,
        "freezeAuthorityRevoked": revoke_freeze,
    }
    raise typer.Exit(asyncio.run(_post(url, "/api/sim/tokens", body, api_key)))


@app.command()
def pool(
    base_mint: Annotated[str, typer.Argument(help="The launched token (mint or symbol).")],
    base_amount: Annotated[str, typer.Argument(help="Base tokens in the pool, UI units.")],
    quote_amount: Annotated[str, typer.Argument(help="Quote tokens in the pool, UI units.")],
    venue: Annotated[str, typer.Option(help="raydium (CPMM) or meteora (DLMM).")] = "raydium",
    quote: Annotated[str, typer.Option(help="Quote token.")] = "SOL",
    url: UrlOption = "http://127.0.0.1:3000",
    api_key: KeyOption = None,
) -> None:
    """Create a pool through the venue's initialise instruction; prints ``pool`` and
    the ``slot`` it was created in."""
    body = {
        "venue": venue,
        "baseMint": base_mint,
        "quoteToken": quote,
        "baseAmount": base_amount,
        "quoteAmount": quote_amount,
    }
    raise typer.Exit(asyncio.run(_post(url, "/api/sim/pools", body, api_key)))
