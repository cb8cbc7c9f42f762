"""yolov5_ms (skeleton)."""

__all__: list[str] = []
