"""Benchmarks: `make bench` (or `python -m bench`) loads the bot and a bare Tornado handler with
wrk in the same run and reports the bot's rate, its ratio to bare, latency, memory and checks.
See bench/README.md."""
