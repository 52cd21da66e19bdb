"""Benchmarks: `make bench` (or `python -m bench`) measures the bot as WeChat uses it."""
