"""porting: the toolkit for moving PyTorch training code to MindSpore and proving nothing changed.

Public surface: ``seed_everything``, the equivalence harness (``assert_equivalent``, ``compare``,
``compare_pipelines``) and the environment check.
"""

from porting._environment import (
    EnvironmentReport,
    IncompatibleEnvironmentError,
    check_environment,
    environment_report,
)

check_environment()

from porting._compare import Comparison, Mismatch, assert_equivalent, compare  # noqa: E402
from porting._pipelines import (  # noqa: E402
    BatchMismatch,
    PipelineReport,
    assert_pipelines_equivalent,
    compare_pipelines,
)
from porting._seed import SeedReport, seed_everything  # noqa: E402

__all__ = [
    "BatchMismatch",
    "PipelineReport",
    "assert_pipelines_equivalent",
    "compare_pipelines",
    "Comparison",
    "Mismatch",
    "assert_equivalent",
    "compare",
    "EnvironmentReport",
    "IncompatibleEnvironmentError",
    "SeedReport",
    "check_environment",
    "environment_report",
    "seed_everything",
]
