"""Fault tests: real processes on loopback, killed and restarted; invariants checked after."""
