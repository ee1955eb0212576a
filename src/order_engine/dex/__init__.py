"""On-chain program knowledge, pure (no I/O): program ids, account layouts,
instruction encodings and swap math, shared by venue clients and the simulator."""
