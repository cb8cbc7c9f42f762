"""yolov5_core: framework-free (numpy/cv2/PIL) YOLOv5 v7.0 data code.

Dataset construction mirrors upstream ultralytics YOLOv5 v7.0 (``yolov5/utils/dataloaders.py``): image
discovery, label paths, the dataset hash, image/label verification and the ``*.cache`` label cache. Also:
a deterministic synthetic dataset for tests and demos, and upstream's hyperparameter files.
"""

from yolov5_core._files import HELP_URL, IMG_FORMATS, get_hash, img2label_paths, list_image_files
from yolov5_core._hyp import HYP_NAMES, load_hyp
from yolov5_core._labels import (
    CACHE_VERSION,
    NUM_THREADS,
    LabelSummary,
    cache_labels,
    exif_size,
    label_cache_path,
    load_label_cache,
    verify_image_label,
)
from yolov5_core._synthetic import CLASS_NAMES, Fault, SyntheticDataset, make_synthetic_dataset

__all__ = [
    "CACHE_VERSION",
    "CLASS_NAMES",
    "HELP_URL",
    "HYP_NAMES",
    "IMG_FORMATS",
    "NUM_THREADS",
    "Fault",
    "LabelSummary",
    "SyntheticDataset",
    "cache_labels",
    "exif_size",
    "get_hash",
    "img2label_paths",
    "label_cache_path",
    "list_image_files",
    "load_hyp",
    "load_label_cache",
    "make_synthetic_dataset",
    "verify_image_label",
]
