"""_large_vocab losses (being written)."""

__all__: list[str] = []
