"""Importing libraries without the optional extras they would load on their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headwater.lean_imports import without

pytestmark = pytest.mark.unit


def test_a_package_is_refused_only_inside_the_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hw_optional_extra").mkdir()
    (tmp_path / "hw_optional_extra" / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "hw_optional_extra" / "sub.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with without("hw_optional_extra"):
            with pytest.raises(ModuleNotFoundError):
                import hw_optional_extra
            with pytest.raises(ModuleNotFoundError):
                import hw_optional_extra.sub
        import hw_optional_extra.sub

        assert hw_optional_extra.sub.VALUE == 2
        with without("hw_optional_extra"):  # already imported: left alone
            import hw_optional_extra as again

            assert again.VALUE == 1
    finally:  # not monkeypatch.delitem: it would put them back, and a second run in this process would see them
        sys.modules.pop("hw_optional_extra", None)
        sys.modules.pop("hw_optional_extra.sub", None)


def test_a_dotted_name_refuses_only_that_subpackage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # mysql-connector bundles OpenTelemetry as mysql.opentelemetry: the connector itself must still import.
    (tmp_path / "hw_vendor" / "bundled").mkdir(parents=True)
    (tmp_path / "hw_vendor" / "__init__.py").write_text("")
    (tmp_path / "hw_vendor" / "bundled" / "__init__.py").write_text("")
    (tmp_path / "hw_vendor" / "bundled_not.py").write_text("VALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with without("hw_vendor.bundled"):
            import hw_vendor
            import hw_vendor.bundled_not  # a name that merely starts the same is not the subpackage

            assert hw_vendor.bundled_not.VALUE == 3
            with pytest.raises(ModuleNotFoundError):
                import hw_vendor.bundled
        import hw_vendor.bundled  # importable again after the block
    finally:
        for name in ("hw_vendor", "hw_vendor.bundled", "hw_vendor.bundled_not"):
            sys.modules.pop(name, None)


def test_an_export_process_builds_arrow_arrays_without_importing_pandas(tmp_path: Path) -> None:
    # A stand-in pandas first on the path (Airflow's image has the real one): pyarrow would import it.
    (tmp_path / "pandas").mkdir()
    (tmp_path / "pandas" / "__init__.py").write_text("__version__ = '2.3.0'\nSTAND_IN = True\n")
    code = (
        "import sys, pyarrow as pa\n"
        "from headwater.parts.writer import _lean_arrow_memory\n"
        "_lean_arrow_memory()\n"
        "pa.array([(b'x',)], type=pa.struct([('c0', pa.binary())]))\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
        "from headwater.sources.mysql import _connector\n"
        "_connector()\n"
        "assert not {'dns', 'opentelemetry', 'mysql.opentelemetry'} & set(sys.modules), 'extras imported'\n"
        "import pandas\n"  # still importable for whoever needs it
        "print(pandas.STAND_IN)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
