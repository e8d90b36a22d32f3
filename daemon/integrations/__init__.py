"""Adapters to the outside world, one module per vendor, each behind a Protocol in `base`."""
