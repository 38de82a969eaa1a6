"""Unit tests keep their temporary files in a folder of their own.

A scratch sweep (``headwater.scratch``) in the system temp folder could otherwise reach the files of other
processes, and under mutation testing a mutant of the sweep may do exactly that.
"""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("tmp")))
