"""Learning-rate schedules (being written)."""

__all__: list[str] = []
