"""``make_trainer`` chooses by name and imports only the trainer chosen; a missing extra fails with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.trainers import TrainerUnavailable, trainer_class


def test_choosing_a_trainer_imports_only_that_one():
    code = ("import sys\nfrom engine.trainers import trainer_class\ntrainer_class('sequential')\n"
            "print(sorted(m for m in sys.modules if m.startswith('engine.trainers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "engine.trainers.sequential" in out
    assert "engine.trainers.population" not in out and "engine.trainers.ray" not in out


def test_a_trainer_whose_package_is_missing_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "engine.trainers.ray", None)  # as if its import failed
    with pytest.raises(TrainerUnavailable, match=r"pip install 'gtl-tui\[ray\]'"):
        trainer_class("ray")


def test_an_unknown_trainer_lists_the_known_ones():
    with pytest.raises(ValueError, match="have: sequential, population, ray"):
        trainer_class("nosuch")
