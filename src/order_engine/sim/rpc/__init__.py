"""The simulated cluster's JSON-RPC server: what `order-engine chain` serves.

The engine's client for this wire lives in `order_engine.adapters.rpc`; this
package is the node side, so it belongs to the simulator's wing.
"""
