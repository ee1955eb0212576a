"""What the chain server and ``RpcChain`` agree on: base58, program error names
as Solana ``TransactionError``s, and the pool list's JSON."""

from __future__ import annotations

import ast
import importlib
import secrets
from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from order_engine import sim as sim_package
from order_engine.adapters.rpc import wire
from order_engine.sim import SimConfig, build_simulator


def error_names_the_simulator_raises() -> set[str]:
    """Every name passed to ``ProgramError``/``DlmmError`` in the simulator and in
    the DLMM math it runs: string literals, the module's own constants, and
    constants of the dex modules it imports."""
    sim_dir = Path(sim_package.__file__).parent
    package_dir = sim_dir.parent  # src/order_engine
    sources = [*sim_dir.glob("*.py"), package_dir / "dex" / "meteora_dlmm_math.py"]
    names: set[str] = set()
    for path in sources:
        tree = ast.parse(path.read_text())
        own = importlib.import_module(
            "order_engine." + ".".join(path.relative_to(package_dir).with_suffix("").parts)
        )
        modules = {
            alias.asname or alias.name: f"order_engine.dex.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "order_engine.dex"
            for alias in node.names
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            if getattr(node.func, "id", None) not in ("ProgramError", "DlmmError"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
            elif isinstance(first, ast.Name) and isinstance(getattr(own, first.id, None), str):
                names.add(getattr(own, first.id))
            elif (
                isinstance(first, ast.Attribute)
                and isinstance(first.value, ast.Name)
                and first.value.id in modules
            ):
                names.add(getattr(importlib.import_module(modules[first.value.id]), first.attr))
    return names


def test_every_error_name_the_simulator_raises_has_a_place_on_the_wire() -> None:
    names = error_names_the_simulator_raises()
    # The scan sees literals (the ledger's) and dex constants (AMM v4's, DLMM math's).
    assert {"ResultWithNegativeLamports", "ExceededSlippage", "MathOverflow"} <= names
    missing = names - wire.BUILTIN_INSTRUCTION_ERRORS - set(wire.SIM_CUSTOM_ERRORS)
    assert not missing, f"add {sorted(missing)} to wire.SIM_CUSTOM_ERRORS"


@pytest.mark.parametrize(
    "name", sorted({*wire.SIM_CUSTOM_ERRORS, *wire.BUILTIN_INSTRUCTION_ERRORS})
)
def test_an_error_name_comes_back_as_itself_from_a_status_and_from_a_transaction(
    name: str,
) -> None:
    err = wire.encode_error(name, 4)

    assert err["InstructionError"][0] == 4
    assert wire.decode_error(err) == name
    assert wire.decode_error(err, ("Program log: anything",)) == name


def test_custom_codes_are_unique_and_clear_of_real_programs_codes() -> None:
    codes = [
        wire.encode_error(n, 0)["InstructionError"][1]["Custom"] for n in wire.SIM_CUSTOM_ERRORS
    ]

    assert len(set(codes)) == len(codes)
    assert min(codes) > 100_000  # Anchor programs use 6000+, native ones small numbers


def test_a_code_from_another_program_is_named_by_its_anchor_log_or_by_its_number() -> None:
    err = {"InstructionError": [2, {"Custom": 6003}]}
    anchor = (
        "Program log: AnchorError occurred. Error Code: ExceededAmountSlippageTolerance. "
        "Error Number: 6003. Error Message: Exceeded amount slippage tolerance.",
    )

    assert wire.decode_error(err, anchor) == "ExceededAmountSlippageTolerance"
    assert wire.decode_error(err) == "Custom(6003)"
    assert wire.decode_error("BlockhashNotFound") == "BlockhashNotFound"
    assert wire.decode_error({"DuplicateInstruction": 1}) == "DuplicateInstruction"


def test_base58_agrees_with_solders_and_keeps_leading_zeros() -> None:
    key = Keypair().pubkey()
    signature = Keypair().sign_message(b"base58")
    for value in (bytes(key), bytes(signature), b"\0\0\1", b"", secrets.token_bytes(700)):
        assert wire.b58decode(wire.b58encode(value)) == value
    assert wire.b58encode(bytes(key)) == str(key)
    assert wire.b58encode(bytes(signature)) == str(signature)
    assert wire.b58encode(bytes(Pubkey.default())) == str(Pubkey.default())
    with pytest.raises(ValueError, match="invalid base58"):
        wire.b58decode("0OIl")


def test_a_pool_listing_survives_its_json() -> None:
    pools = build_simulator(SimConfig(time_scale=0, seed=3)).pools

    assert [wire.listing_from_json(wire.listing_to_json(p)) for p in pools] == pools
