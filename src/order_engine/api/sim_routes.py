"""``/api/sim``: launch tokens and pools on the simulated cluster (admin only).

They exist only while the engine runs against the simulator (in process, or the
chain process over JSON-RPC); elsewhere they answer 404 ``not_simulated``.
While API keys are required, only the keys listed in ``ADMIN_KEYS`` may call
them (403 ``forbidden``); in open mode (loopback only) anyone may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from order_engine.api.auth import authenticated
from order_engine.api.errors import RequestProblem
from order_engine.api.order_input import require_json_content_type
from order_engine.api.routes import AUTH_ERRORS
from order_engine.api.schemas import Problem
from order_engine.app.access import Caller
from order_engine.app.launches import LaunchService

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

FORBIDDEN = "forbidden"
NOT_SIMULATED = "not_simulated"
_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    403: {"model": Problem, "description": "Not an admin key (ADMIN_KEYS)"},
    404: {"model": Problem, "description": "The engine is not running against the simulator"},
    422: {"model": Problem, "description": "Invalid launch"},
}

router = APIRouter()


async def _admin(request: Request, caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
    engine: Engine = request.app.state.engine
    if await engine.gateway.auth.enforced() and caller.owner not in engine.settings.admin_keys:
        raise RequestProblem(
            403,
            FORBIDDEN,
            f"the /api/sim endpoints need an admin key: expected one of ADMIN_KEYS, got key "
            f"{caller.owner or '(none)'}",
        )
    return caller


def _service(request: Request) -> LaunchService:
    engine: Engine = request.app.state.engine
    if engine.launches is None:
        raise RequestProblem(
            404, NOT_SIMULATED, "no simulated chain: launches exist only on the simulator"
        )
    return engine.launches


async def _body(request: Request) -> dict[str, Any]:
    require_json_content_type(request.headers.get("content-type"))
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RequestProblem(400, "invalid_json", f"body: expected JSON ({exc})") from None
    if not isinstance(body, dict):
        raise RequestProblem(422, "invalid_request", "body: expected a JSON object")
    return body


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), 201, media_type="application/json")


@router.post("/api/sim/tokens", status_code=201, responses=_ERRORS, summary="Launch a token")
async def create_token(request: Request, _caller: Annotated[Caller, Depends(_admin)]) -> Response:
    """A new SPL mint, its whole ``supply`` (UI units) held by the simulator's
    launchpad; ``mintAuthorityRevoked``/``freezeAuthorityRevoked`` leave the
    authority unset, as a revoked one is on chain."""
    service = _service(request)
    return _json(await service.create_token(await _body(request)))


@router.post("/api/sim/pools", status_code=201, responses=_ERRORS, summary="Launch a pool")
async def create_pool(request: Request, _caller: Annotated[Caller, Depends(_admin)]) -> Response:
    """A new Raydium CPMM pool (``venue: raydium``) or Meteora DLMM pair
    (``meteora``) of ``baseMint`` and ``quoteToken``, created by the venue
    program's initialise instruction; ``slot`` is the slot it was created in."""
    service = _service(request)
    return _json(await service.create_pool(await _body(request)))
