"""yolov5_core (skeleton)."""

__all__: list[str] = []
