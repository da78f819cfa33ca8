"""_sequence losses (being written)."""

__all__: list[str] = []
