"""Non-standard JSON-RPC methods of the chain process: token and pool launches.

``simCreateToken([{"symbol", "decimals", "supply", "mintAuthorityRevoked",
"freezeAuthorityRevoked"}])`` and ``simCreatePool([{"venue", "baseMint",
"quoteMint", "baseAmount", "quoteAmount"}])``, amounts in base units (the
engine's API converts UI units before calling). A refused launch is ``-32602``
with the launchpad's message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from solders.pubkey import Pubkey

from order_engine.adapters.rpc import wire
from order_engine.sim.launches import Launchpad, LaunchRejected
from order_engine.sim.rpc.methods import RpcFailure

Params = list[Any]


def _spec(params: Params) -> dict[str, Any]:
    if len(params) != 1 or not isinstance(params[0], dict):
        raise RpcFailure(wire.INVALID_PARAMS, "Invalid params: expected one object")
    return params[0]


def _int(spec: dict[str, Any], name: str) -> int:
    value = spec.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RpcFailure(wire.INVALID_PARAMS, f"Invalid params: {name}: expected an integer")
    return value


def _key(spec: dict[str, Any], name: str) -> Pubkey:
    try:
        return Pubkey.from_string(str(spec.get(name)))
    except ValueError:
        raise RpcFailure(
            wire.INVALID_PARAMS, f"Invalid params: {name}: expected a base58 address"
        ) from None


def launch_methods(launchpad: Launchpad) -> dict[str, Callable[[Params], Any]]:
    def create_token(params: Params) -> Any:
        spec = _spec(params)
        try:
            token = launchpad.create_token(
                str(spec.get("symbol", "")),
                _int(spec, "decimals"),
                _int(spec, "supply"),
                mint_authority_revoked=spec.get("mintAuthorityRevoked") is True,
                freeze_authority_revoked=spec.get("freezeAuthorityRevoked") is True,
            )
        except LaunchRejected as exc:
            raise RpcFailure(wire.INVALID_PARAMS, str(exc)) from None
        return {"mint": token.mint, "symbol": token.symbol, "decimals": token.decimals}

    def create_pool(params: Params) -> Any:
        spec = _spec(params)
        try:
            launched = launchpad.create_pool(
                str(spec.get("venue", "")),
                _key(spec, "baseMint"),
                _key(spec, "quoteMint"),
                _int(spec, "baseAmount"),
                _int(spec, "quoteAmount"),
            )
        except LaunchRejected as exc:
            raise RpcFailure(wire.INVALID_PARAMS, str(exc)) from None
        return {
            "pool": launched.listing.address,
            "venue": launched.listing.venue,
            "slot": launched.slot,
            "signature": launched.signature,
        }

    return {"simCreateToken": create_token, "simCreatePool": create_pool}
