"""lossjax.regularizers: penalties, regularizing transforms and dropout (being written)."""

__all__: list[str] = []
