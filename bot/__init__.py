"""The application: config, the gifting domain (catalogue, shares, orders), forms and chat flows,
notifications through the outbox, app wiring and the CLI (`python -m bot`)."""
