"""tier2gate: pages Tier 2 only for emergencies the Support Manager on Call approved."""

__version__ = "0.1.0"
