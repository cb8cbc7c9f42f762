"""The equivalence harness: compare any two nested structures or batch streams, ``assert_close``-style.

``compare`` / ``assert_equivalent`` take tensors, arrays, numbers and nested dicts/lists/tuples from
any mix of torch, MindSpore and numpy; ``compare_pipelines`` / ``assert_pipelines_equivalent`` walk two
batch streams epoch by epoch. Exact by default; tolerances are stated in the verdict. The rest of
``porting`` (conversion, training, the command line) judges with these.
"""

from porting.harness._compare import Comparison, Mismatch, assert_equivalent, compare
from porting.harness._pipelines import (
    BatchMismatch,
    PipelineReport,
    assert_pipelines_equivalent,
    compare_pipelines,
    dataset_rows,
    loader_epochs,
)

__all__ = [
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
]
