"""Ports: what the application needs from the outside world, as small Protocols.

Adapters implement them (``order_engine.adapters``); the composition root
(``order_engine.bootstrap``) picks one adapter per port. Each port has one
abstract contract-test class in ``tests/contract`` that every adapter passes.
"""
