"""``order-engine bench``: the seed's concurrent load test, grown up.

A lean aiohttp client (one session, one WebSocket per order, orjson) drives an
engine at a bounded load, closed loop (``--concurrency``) or open loop
(``--rate``), and reports throughput, latency histograms, stream completeness
and, with ``--verify``, what the database holds. Without ``--url`` it starts
the real ``order-engine serve`` in a child process on a loopback port and
stops it at the end.

| Module        | What                                                          |
|---------------|---------------------------------------------------------------|
| ``stats``     | pure: latency summaries, stream completeness, tallies         |
| ``schedule``  | pure: arrival times, the order mix, option parsing            |
| ``loadgen``   | the client: closed and open loops, POST then WebSocket        |
| ``procstat``  | ``/proc`` readings: CPU time, peak RSS, machine load           |
| ``embedded``  | the embedded engine (or the self-test stub) as a child process |
| ``verify``    | SQL checks of every submitted order's stored history          |
| ``report``    | the text report and the JSON document                         |
| ``command``   | the typer command and the run's orchestration                 |
| ``stub``      | a trivially fast server of the wire contract (``--self-test``) |
| ``scenarios`` | ``make bench``: the standard scenarios into docs/performance.md |
"""
