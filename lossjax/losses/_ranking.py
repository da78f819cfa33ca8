"""_ranking losses (being written)."""

__all__: list[str] = []
