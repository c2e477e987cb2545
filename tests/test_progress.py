"""Progress bars: quiet in a notebook kernel without ipywidgets, throttled in a terminal."""

from __future__ import annotations

import io
import sys
import types
import warnings

import pytest

from playment_datasets.pull import progress


def test_a_kernel_without_ipywidgets_gets_a_throttled_text_bar(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(progress, "_has_widgets", lambda: False)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a TqdmWarning (IProgress not found) would raise
        bar = progress.make_progress(None, desc="pulling", unit="job", total=1000)
        for _ in range(1000):
            bar.update(1)
        bar.close()
    assert type(bar).__module__ == "tqdm.std"
    assert bar.mininterval == progress.NOTEBOOK_MININTERVAL
    # 1000 updates in well under the interval: a first and a last draw, not one per update
    assert stream.getvalue().count("\r") <= 4


def test_a_terminal_bar_is_throttled_and_off_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress.make_progress(True, desc="media", total=10)
    assert bar.mininterval == progress.TERMINAL_MININTERVAL
    bar.close()
    assert isinstance(progress.make_progress(False, desc="x"), progress.NullProgress)
    assert progress.make_progress(None, desc="x").__class__ is progress.NullProgress  # no tty
