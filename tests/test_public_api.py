"""Pin each package's public surface: a change here must be deliberate (and documented)."""

import fnmatch
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

SURFACE = {
    "porting": [
        "BatchMismatch", "Comparison", "EnvironmentReport", "IncompatibleEnvironmentError", "Mismatch",
        "PipelineReport", "SeedReport", "assert_equivalent", "assert_pipelines_equivalent", "check_environment",
        "compare", "compare_pipelines", "environment_report", "seed_everything",
        "CheckpointMismatchError", "CheckpointReport", "convert_batchnorm", "convert_checkpoint",
        "copy_batchnorm_state", "load_torch_state_dict", "torch_state_dict", "torch_to_mindspore_names",
        "ReferenceSyncBatchNorm", "ReferenceSyncBatchNormCell",
        "LRSchedule", "LayerDiff", "LayerReport", "StepRecord", "TrainingReport", "compare_training",
        "convert_lr_scheduler", "convert_optimizer", "diff_layers",
    ],
    "adapters": [
        "BatchSampler", "Dataset", "DistributedSampler", "Generator", "IterableDataset", "RandomSampler", "Sampler",
        "SequentialSampler", "Structure", "StructureMismatchError", "SubsetRandomSampler", "TorchLoaderDataset",
        "WeightedRandomSampler", "WorkerError", "WorkerInfo", "default_collate", "default_convert",
        "default_generator", "generate_state", "get_worker_info", "to_mindspore", "to_numpy",
    ],
    "adapters.torch_data": [
        "BatchSampler", "Dataset", "DistributedSampler", "Generator", "IterableDataset", "RandomSampler", "Sampler",
        "SequentialSampler", "SubsetRandomSampler", "WeightedRandomSampler", "WorkerInfo", "WorkerSeeds",
        "default_collate", "default_convert", "default_generator", "draw_base_seed", "generate_state",
        "get_worker_info", "to_numpy", "worker_seeds",
    ],
    "adapters.engine": [
        "LoaderSpec", "Schedule", "Structure", "StructureMismatchError", "TorchLoaderDataset", "WorkerError",
        "build_engine", "reachable_samplers", "spec_from_dataset", "spec_from_loader", "to_mindspore",
    ],
    "yolov5_core": [
        "Albumentations", "CACHE_VERSION", "CLASS_NAMES", "Fault", "GENERATOR_SEED_BASE", "HELP_URL", "HYP_KEYS",
        "HYP_NAMES", "IMG_FORMATS", "LoaderRecipe", "collate_fn", "collate_fn4", "interpolate_bilinear",
        "loader_recipe", "rank_from_env", "rect_shuffle", "seed_worker_from",
        "LabelSummary", "MOSAIC_HYP_KEYS", "NUM_THREADS", "SyntheticDataset", "YoloDatasetCore", "augment_hsv",
        "bbox_ioa", "box_candidates", "cache_images_to_disk", "cache_labels", "check_cache_ram", "clip_boxes",
        "copy_paste", "default_transforms", "exif_size", "get_hash", "img2label_paths", "label_cache_path",
        "letterbox", "list_image_files", "load_hyp", "load_image", "load_label_cache", "load_mosaic",
        "make_synthetic_dataset", "mixup", "random_perspective", "read_image", "resample_segments", "resize_image",
        "segment2box", "segments2boxes", "verify_image_label", "xyn2xy", "xywh2xyxy", "xywhn2xyxy", "xyxy2xywh",
        "xyxy2xywhn",
    ],
    "yolov5_pt": [
        "InfiniteDataLoader", "LoadImagesAndLabels", "collate_fn", "collate_fn4", "create_dataloader", "seed_worker",
        "torch_distributed_zero_first",
    ],
    "yolov5_ms": [
        "COLUMNS", "LoadImagesAndLabels", "collate_fn", "collate_fn4", "create_dataloader", "distributed_context",
        "seed_worker",
    ],
}


@pytest.mark.parametrize("package", sorted(SURFACE))
def test_public_surface_is_pinned(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(SURFACE[package])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name} is listed but not defined"


@pytest.mark.parametrize("package", sorted(SURFACE))
def test_private_modules_declare_all(package):
    folder = ROOT.joinpath(*package.split("."))
    for path in sorted(folder.glob("_*.py")):
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        module = importlib.import_module(f"{package}.{path.stem}")
        assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{package}/{path.name} has no __all__"


@pytest.mark.parametrize("package", ["porting", "adapters", "yolov5_core", "yolov5_ms"])
def test_mindspore_side_imports_without_torch(package):
    from tests._helpers.subproc import run_python

    out = run_python(f"import sys, {package}; print('torch' in sys.modules)", block_torch=True)
    assert out.strip() == "False"


def _imports(path: pathlib.Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "lower, upper, above",
    [
        ("adapters/torch_data", ("adapters.engine", "adapters._", "porting", "yolov5_core", "yolov5_pt", "yolov5_ms", "mindspore"), ()),
        ("adapters/engine", ("porting._compare", "porting._pipelines", "porting._demo", "porting.cli", "yolov5_"), ()),
        # porting's core (harness, seeding, environment); its CLI and demo sit above adapters
        ("porting", ("adapters", "yolov5_"), ("_demo.py", "_check.py", "_cli_*.py", "cli.py", "__main__.py")),
        ("yolov5_core", ("adapters", "porting", "yolov5_pt", "yolov5_ms", "torch", "mindspore"), ()),
    ],
)
def test_lower_layers_never_import_upper_ones(lower, upper, above):
    for path in sorted((ROOT / lower).glob("*.py")):
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in above):
            continue
        bad = sorted(n for n in _imports(path) if n.startswith(upper) or n in {u.rstrip("._") for u in upper})
        assert not bad, f"{path.relative_to(ROOT)} imports {bad} (a layer above it)"


def test_one_version_for_the_toolkit_and_the_command_line():
    import adapters
    import porting
    from porting.cli import main

    assert porting.__version__ == adapters.__version__
    assert porting.__version__.count(".") >= 2
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0


def test_every_command_line_option_has_help_text_and_no_raw_markup():
    from porting.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert set(sub.choices) >= {"demo", "check", "convert-ckpt", "diff", "env"}
    for name, command in sub.choices.items():
        text = command.format_help()
        assert "``" not in text and ":func:" not in text, f"raw RST in `torch2ms {name} --help`"
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"torch2ms {name}: option {action.option_strings or action.dest} has no help"
