"""yolov5_pt (skeleton)."""

__all__: list[str] = []
