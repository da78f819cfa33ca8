"""_segmentation losses (being written)."""

__all__: list[str] = []
