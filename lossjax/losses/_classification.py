"""_classification losses (being written)."""

__all__: list[str] = []
