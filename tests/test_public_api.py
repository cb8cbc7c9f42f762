"""Pin each package's public surface: a change here must be deliberate (and documented)."""

import argparse
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

SURFACE = {
    "porting": [
        "BatchMismatch",
        "Comparison",
        "EnvironmentReport",
        "IncompatibleEnvironmentError",
        "Mismatch",
        "PipelineReport",
        "SeedReport",
        "assert_equivalent",
        "assert_pipelines_equivalent",
        "check_environment",
        "compare",
        "compare_pipelines",
        "environment_report",
        "seed_everything",
        "CheckpointMismatchError",
        "CheckpointReport",
        "convert_batchnorm",
        "convert_checkpoint",
        "copy_batchnorm_state",
        "load_torch_state_dict",
        "torch_state_dict",
        "torch_to_mindspore_names",
        "ReferenceSyncBatchNorm",
        "ReferenceSyncBatchNormCell",
        "Alignment",
        "align",
        "LRSchedule",
        "LayerDiff",
        "LayerReport",
        "StepRecord",
        "TrainingReport",
        "compare_training",
        "convert_lr_scheduler",
        "convert_optimizer",
        "diff_layers",
    ],
    "porting.harness": [
        "BatchMismatch",
        "Comparison",
        "Mismatch",
        "PipelineReport",
        "assert_equivalent",
        "assert_pipelines_equivalent",
        "compare",
        "compare_pipelines",
        "dataset_rows",
        "loader_epochs",
    ],
    "porting.convert": [
        "CheckpointMismatchError",
        "CheckpointReport",
        "ReferenceSyncBatchNorm",
        "ReferenceSyncBatchNormCell",
        "convert_batchnorm",
        "convert_checkpoint",
        "copy_batchnorm_state",
        "load_torch_state_dict",
        "torch_state_dict",
        "torch_to_mindspore_names",
        "Alignment",
        "align",
    ],
    "porting.training": [
        "LRSchedule",
        "LayerDiff",
        "LayerReport",
        "StepRecord",
        "TrainingReport",
        "compare_training",
        "convert_lr_scheduler",
        "convert_optimizer",
        "diff_layers",
    ],
    "porting.cli": ["build_parser", "main"],
    "torch2ms_base": [
        "EnvironmentReport",
        "IncompatibleEnvironmentError",
        "RandomStream",
        "SeedReport",
        "StreamState",
        "StreamUnavailable",
        "__version__",
        "check_environment",
        "environment_report",
        "own_streams",
        "register_stream",
        "seed_everything",
        "streams",
    ],
    "adapters": [
        "BatchSampler",
        "Dataset",
        "DistributedSampler",
        "Generator",
        "IterableDataset",
        "RandomSampler",
        "Sampler",
        "SequentialSampler",
        "Structure",
        "StructureMismatchError",
        "SubsetRandomSampler",
        "TorchLoaderDataset",
        "WeightedRandomSampler",
        "WorkerError",
        "WorkerInfo",
        "batch",
        "default_collate",
        "default_convert",
        "default_generator",
        "generate_state",
        "get_worker_info",
        "sample_dataset",
        "to_mindspore",
        "to_numpy",
    ],
    "adapters.torch_data": [
        "BatchSampler",
        "Dataset",
        "DistributedSampler",
        "Generator",
        "IterableDataset",
        "RandomSampler",
        "Sampler",
        "SequentialSampler",
        "SubsetRandomSampler",
        "WeightedRandomSampler",
        "WorkerInfo",
        "WorkerSeeds",
        "default_collate",
        "default_convert",
        "default_generator",
        "draw_base_seed",
        "generate_state",
        "get_worker_info",
        "to_numpy",
        "worker_seeds",
    ],
    "adapters.engine": [
        "LoaderSpec",
        "Schedule",
        "Structure",
        "StructureMismatchError",
        "TorchLoaderDataset",
        "WorkerError",
        "batch",
        "build_engine",
        "reachable_samplers",
        "sample_dataset",
        "spec_from_dataset",
        "spec_from_loader",
        "to_mindspore",
    ],
    "yolov5_core": [
        "Albumentations",
        "CACHE_VERSION",
        "CLASS_NAMES",
        "Fault",
        "GENERATOR_SEED_BASE",
        "HELP_URL",
        "HYP_KEYS",
        "HYP_NAMES",
        "IMG_FORMATS",
        "LoaderRecipe",
        "collate_fn",
        "collate_fn4",
        "interpolate_bilinear",
        "loader_recipe",
        "rank_from_env",
        "rect_shuffle",
        "seed_worker_from",
        "LabelSummary",
        "MOSAIC_HYP_KEYS",
        "NUM_THREADS",
        "SyntheticDataset",
        "YoloDatasetCore",
        "augment_hsv",
        "bbox_ioa",
        "box_candidates",
        "cache_images_to_disk",
        "cache_labels",
        "check_cache_ram",
        "clip_boxes",
        "copy_paste",
        "default_transforms",
        "exif_size",
        "get_hash",
        "img2label_paths",
        "label_cache_path",
        "letterbox",
        "list_image_files",
        "load_hyp",
        "load_image",
        "load_label_cache",
        "load_mosaic",
        "make_synthetic_dataset",
        "mixup",
        "random_perspective",
        "read_image",
        "resample_segments",
        "resize_image",
        "segment2box",
        "segments2boxes",
        "verify_image_label",
        "xyn2xy",
        "xywh2xyxy",
        "xywhn2xyxy",
        "xyxy2xywh",
        "xyxy2xywhn",
    ],
    "yolov5_pt": [
        "InfiniteDataLoader",
        "LoadImagesAndLabels",
        "collate_fn",
        "collate_fn4",
        "create_dataloader",
        "seed_worker",
        "torch_distributed_zero_first",
    ],
    "yolov5_ms": [
        "COLUMNS",
        "LoadImagesAndLabels",
        "SAMPLE_COLUMNS",
        "collate_fn",
        "collate_fn4",
        "create_dataloader",
        "distributed_context",
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


@pytest.mark.parametrize("package", ["torch2ms_base", "porting", "adapters", "yolov5_core", "yolov5_ms"])
def test_mindspore_side_imports_without_torch(package):
    from tests._helpers.subproc import run_python

    out = run_python(f"import sys, {package}; print('torch' in sys.modules)", block_torch=True)
    assert out.strip() == "False"


# The layers, bottom up: what each package may import of the project (its own modules always).
# torch2ms_base < adapters.torch_data < adapters.engine < adapters;
# torch2ms_base < porting.harness < porting.convert < porting.training < porting;
# yolov5_core (framework-free) < yolov5_pt (torch) / yolov5_ms (on adapters); porting.cli uses all.
_PROJECT = ("torch2ms_base", "adapters", "porting", "yolov5_core", "yolov5_pt", "yolov5_ms")
LAYERS = {
    "torch2ms_base": set(),
    "adapters.torch_data": {"torch2ms_base"},
    "adapters.engine": {"torch2ms_base", "adapters.torch_data"},
    "adapters": {"torch2ms_base", "adapters.torch_data", "adapters.engine"},
    "porting.harness": {"torch2ms_base"},
    "porting.convert": {"torch2ms_base", "porting.harness"},
    "porting.training": {"torch2ms_base", "porting.harness", "porting.convert"},
    "porting": {"torch2ms_base", "porting.harness", "porting.convert", "porting.training"},
    "porting.cli": {
        "torch2ms_base",
        "porting",
        "porting.harness",
        "porting.convert",
        "porting.training",
        "adapters",
        "adapters.torch_data",
        "adapters.engine",
        "yolov5_core",
        "yolov5_pt",
        "yolov5_ms",
    },
    "yolov5_core": set(),
    "yolov5_pt": {"yolov5_core"},
    "yolov5_ms": {"torch2ms_base", "yolov5_core", "adapters", "adapters.torch_data", "adapters.engine"},
}
# Third-party packages a layer must not import (at module level or inside a function).
FORBIDDEN = {
    "adapters.torch_data": ("mindspore",),
    "yolov5_core": ("torch", "mindspore"),
    "yolov5_ms": ("torch",),
}
_OWNER_OVERRIDES = {"porting/__main__.py": "porting.cli"}  # the command line's entry point


def _layer_of(module: str) -> str | None:
    """The most specific layer ``module`` belongs to (``porting.harness._compare`` -> ``porting.harness``)."""
    best = None
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (function bodies too), relative imports resolved."""
    import ast

    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""  # `from . import x` has level 1
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)  # `from porting import harness`
    return names


def _all_modules():
    for top in _PROJECT:
        yield from sorted((ROOT / top).rglob("*.py"))


def test_the_layer_table_covers_every_module():
    assert all(_layer_of(_module_name(p)) is not None for p in _all_modules())
    assert len(list(_all_modules())) > 75


@pytest.mark.parametrize("path", list(_all_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_lower_layers_never_import_upper_ones(path):
    rel = str(path.relative_to(ROOT))
    own = _OWNER_OVERRIDES.get(rel) or _layer_of(_module_name(path))
    assert own is not None, f"{rel}: in no layer of LAYERS"
    allowed = LAYERS[own] | {own}
    bad = set()
    for name in _imports(path):
        if name.split(".")[0] in _PROJECT:
            target = _layer_of(name)
            if target not in allowed:
                bad.add(name)
        elif name.split(".")[0] in FORBIDDEN.get(own, ()):
            bad.add(name)
    assert not bad, f"{rel} ({own}) imports {sorted(bad)}: a layer above it (allowed: {sorted(allowed)})"


@pytest.mark.parametrize(
    "package, not_loaded",
    [
        ("adapters", ("porting", "yolov5_core", "yolov5_pt", "yolov5_ms")),
        ("porting", ("adapters", "yolov5_core", "yolov5_pt", "yolov5_ms", "porting.cli")),
        ("torch2ms_base", ("adapters", "porting", "yolov5_core", "yolov5_pt", "yolov5_ms", "mindspore", "torch")),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(package, not_loaded):
    """At import time (functions may import what they need when called: seed_everything imports torch)."""
    from tests._helpers.subproc import run_python

    code = (
        f"import sys, {package}; names = {not_loaded!r}; "
        "print(sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in names)))"
    )
    out = run_python(code)
    assert out.strip() == "[]"


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
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sub.choices is not None and set(sub.choices) >= {"demo", "check", "convert-ckpt", "diff", "env"}
    for name, command in sub.choices.items():
        text = command.format_help()
        assert "``" not in text and ":func:" not in text, f"raw RST in `torch2ms {name} --help`"
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"torch2ms {name}: option {action.option_strings or action.dest} has no help"
