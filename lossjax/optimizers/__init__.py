"""lossjax.optimizers: GradientTransformations written in lossjax (being written)."""

__all__: list[str] = []
