"""Venue clients (Raydium, Meteora) behind the Venue port: they read pool accounts
through the Chain port and quote locally with the programs' math, as the SDKs do."""

from order_engine.adapters.venues.listing import PoolListing
from order_engine.adapters.venues.meteora import MeteoraVenue
from order_engine.adapters.venues.raydium import RaydiumVenue

__all__ = ["MeteoraVenue", "PoolListing", "RaydiumVenue"]
