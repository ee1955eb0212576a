"""The simulated cluster behind Solana JSON-RPC (``server``) and the Chain port
over JSON-RPC (``RpcChain``), for the distributed mode: one ``order-engine
chain`` process, many workers and API nodes reaching it at ``SOLANA_RPC_URL``."""

from order_engine.adapters.rpc.chain import RpcChain, RpcUnavailable
from order_engine.adapters.rpc.funding import FundingFailed, ensure_funded, fetch_pool_listing

__all__ = ["FundingFailed", "RpcChain", "RpcUnavailable", "ensure_funded", "fetch_pool_listing"]
