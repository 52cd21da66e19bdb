"""Tornado page handlers: the gift and claim pages, the order form, /healthz and the /dev sandbox."""
