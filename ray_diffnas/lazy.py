"""Names a package exports but imports on first use (PEP 562): ``ray-diffnas --help`` and a mistyped flag
answer at once instead of after importing torch and Ray."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``exports`` (name -> module, relative to ``package``).

    Example:
        >>> getattr_, dir_ = lazy_exports("ray_diffnas", {"DiffNASError": "errors"})
        >>> getattr_("DiffNASError").__name__, "DiffNASError" in dir_()
        ('DiffNASError', True)
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        namespace[name] = value  # found directly from now on
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
