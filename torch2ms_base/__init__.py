"""torch2ms_base: what every layer of the toolkit may use, and nothing else.

Below ``adapters`` and ``porting`` (it imports neither, nor MindSpore or torch at import time):

* the environment check (``check_environment``: mindspore 2.10 with numpy 2 fails early, clearly);
* the toolkit's one version (``__version__``);
* the one list of global random streams (:func:`streams`, :func:`register_stream`), and what is done
  with it: :func:`seed_everything`, :class:`StreamState` / :func:`own_streams`.

``porting`` and ``adapters`` re-export what their users need from here.
"""

from torch2ms_base._environment import (
    EnvironmentReport,
    IncompatibleEnvironmentError,
    check_environment,
    environment_report,
)
from torch2ms_base._seed import SeedReport, seed_everything
from torch2ms_base._streams import (
    RandomStream,
    StreamState,
    StreamUnavailable,
    own_streams,
    register_stream,
    streams,
)
from torch2ms_base._version import __version__

__all__ = [
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
]
