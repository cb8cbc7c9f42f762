"""The toolkit's version, one place for ``porting``, ``adapters`` and ``torch2ms --version``."""

from importlib import metadata

__all__ = ["__version__"]

try:
    __version__ = metadata.version("torch2ms-porting")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"
