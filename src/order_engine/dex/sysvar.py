"""The Clock sysvar, which DLMM quotes read for the volatility filter and decay.

Source: solana-program ``clock.rs`` (``Clock { slot: u64, epoch_start_timestamp:
i64, epoch: u64, leader_schedule_epoch: u64, unix_timestamp: i64 }``, bincode).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

CLOCK_SYSVAR_ID = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
SLOTS_PER_EPOCH = 432_000

_CLOCK = struct.Struct("<QqQQq")


@dataclass(frozen=True, slots=True)
class Clock:
    slot: int
    unix_timestamp: int
    epoch_start_timestamp: int = 0

    @property
    def epoch(self) -> int:
        return self.slot // SLOTS_PER_EPOCH


def encode_clock(clock: Clock) -> bytes:
    return _CLOCK.pack(
        clock.slot, clock.epoch_start_timestamp, clock.epoch, clock.epoch, clock.unix_timestamp
    )


def decode_clock(data: bytes) -> Clock:
    if len(data) != _CLOCK.size:
        raise ValueError(f"Clock sysvar: expected {_CLOCK.size} bytes, got {len(data)}")
    slot, start, _epoch, _leader, unix_timestamp = _CLOCK.unpack(data)
    return Clock(slot, unix_timestamp, start)
