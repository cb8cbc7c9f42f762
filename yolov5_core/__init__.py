"""yolov5_core: framework-free (numpy/cv2/PIL) YOLOv5 v7.0 data code.

Dataset construction mirrors upstream ultralytics YOLOv5 v7.0 (``yolov5/utils/dataloaders.py``): image
discovery, label paths, the dataset hash, image/label verification and the ``*.cache`` label cache. Also:
upstream's ``create_dataloader`` recipe (:func:`loader_recipe`), numpy ``collate_fn`` / ``collate_fn4``,
a deterministic synthetic dataset for tests and demos, and upstream's hyperparameter files. The training
``__getitem__`` (mosaic, mixup, copy-paste, random_perspective, letterbox, albumentations, HSV, flips) lives
here too, as numpy, in ``YoloDatasetCore``: ``yolov5_pt`` wraps it for torch and ``yolov5_ms`` for MindSpore.
No module here imports torch.
"""

from yolov5_core._albumentations import Albumentations, default_transforms
from yolov5_core._augment import augment_hsv, box_candidates, copy_paste, mixup, random_perspective
from yolov5_core._boxes import (
    bbox_ioa,
    clip_boxes,
    resample_segments,
    segment2box,
    segments2boxes,
    xyn2xy,
    xywh2xyxy,
    xywhn2xyxy,
    xyxy2xywh,
    xyxy2xywhn,
)
from yolov5_core._collate import collate_fn, collate_fn4
from yolov5_core._dataset import HYP_KEYS, MOSAIC_HYP_KEYS, YoloDatasetCore
from yolov5_core._files import HELP_URL, IMG_FORMATS, get_hash, img2label_paths, list_image_files
from yolov5_core._hyp import HYP_NAMES, load_hyp
from yolov5_core._images import cache_images_to_disk, check_cache_ram, load_image, read_image, resize_image
from yolov5_core._interpolate import interpolate_bilinear
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
from yolov5_core._letterbox import letterbox
from yolov5_core._loader import (
    GENERATOR_SEED_BASE,
    LoaderRecipe,
    loader_recipe,
    rank_from_env,
    rect_shuffle,
    seed_worker_from,
)
from yolov5_core._mosaic import load_mosaic
from yolov5_core._synthetic import CLASS_NAMES, Fault, SyntheticDataset, make_synthetic_dataset

__all__ = [
    "GENERATOR_SEED_BASE",
    "LoaderRecipe",
    "collate_fn",
    "collate_fn4",
    "interpolate_bilinear",
    "loader_recipe",
    "rank_from_env",
    "rect_shuffle",
    "seed_worker_from",
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
    "Albumentations",
    "default_transforms",
    "augment_hsv",
    "box_candidates",
    "copy_paste",
    "mixup",
    "random_perspective",
    "HYP_KEYS",
    "MOSAIC_HYP_KEYS",
    "YoloDatasetCore",
    "cache_images_to_disk",
    "check_cache_ram",
    "load_image",
    "read_image",
    "resize_image",
    "letterbox",
    "load_mosaic",
    "bbox_ioa",
    "clip_boxes",
    "resample_segments",
    "segment2box",
    "segments2boxes",
    "xyn2xy",
    "xywh2xyxy",
    "xywhn2xyxy",
    "xyxy2xywh",
    "xyxy2xywhn",
]
