"""The data the forms read: `regions.json` (China's provinces, cities and districts, for the
address field) with its licence, and `build_regions.py`, which makes it."""
