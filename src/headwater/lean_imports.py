"""Importing a library without the optional extras it would load on its own, to keep export processes small."""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterator
from typing import Any


class _Refuse(importlib.abc.MetaPathFinder):
    def __init__(self, packages: frozenset[str]) -> None:
        self.packages = packages

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if any(name == p or name.startswith(p + ".") for p in self.packages):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@contextlib.contextmanager
def without(*packages: str) -> Iterator[None]:
    """Inside the block, importing ``packages`` (not yet imported; a dotted name blocks that subpackage, as
    ``mysql.opentelemetry``) fails as if they were not installed.

    For libraries that probe optional extras at import time and work without them: pyarrow asks for pandas
    (50 MB) on its first ``pa.array(list)``, mysql.connector loads dnspython and the OpenTelemetry SDK (15 MB).
    Once the block ends the packages import normally again for anyone who needs them.
    """
    blocked = frozenset(p for p in packages if p not in sys.modules)
    finder = _Refuse(blocked)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
