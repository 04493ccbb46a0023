"""Package namespaces whose names are imported on first use (light imports, no import cycles)."""

import importlib


def lazy_exports(package: str, exports: dict):
    """``__getattr__`` and ``__dir__`` for ``package``, whose name ``n`` lives in module ``exports[n]``."""

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
