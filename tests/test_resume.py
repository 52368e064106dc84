"""Resume fingerprints follow what changes the result: a resumable run restarts when params, inputs, the
environment or the training math it imports change, and resumes (with a warning naming the files) after any
other code change, such as a fix in validation scoring; code the stage does not import changes nothing."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from blat_core.train import checkpointing
from tests.conftest import ROOT


@pytest.fixture
def tree(tmp_path):
    """A copy of the code (blat_core + stages) to edit, and a saved checkpoint fingerprinted against it."""
    root = tmp_path / "code"
    shutil.copytree(ROOT / "blat_core", root / "blat_core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())

    def checkpointer() -> checkpointing.Checkpointer:
        checkpointing._code_digests.cache_clear()
        key = checkpointing.fingerprint({"lr": 1.0e-4}, [], [root / "stages" / "pretrain.py"], root=root)
        return checkpointing.Checkpointer(tmp_path / "scratch", key)

    checkpointer().save(7, model, optimizer, {})
    return root, checkpointer


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_a_fix_outside_the_training_math_resumes_and_says_so(tree, caplog):
    root, checkpointer = tree
    _edit(root / "blat_core" / "eval" / "report.py")  # not imported by pre-training at all
    with caplog.at_level(logging.WARNING):
        assert checkpointer().load()["step"] == 7
    assert not caplog.records
    _edit(root / "blat_core" / "eval" / "metrics" / "retrieval.py")  # validation scoring: imported, not training math
    with caplog.at_level(logging.WARNING):
        assert checkpointer().load()["step"] == 7
    assert "resuming" in caplog.text and "blat_core/eval/metrics/retrieval.py" in caplog.text


LOSS = "(F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2"


def test_a_comment_or_docstring_edit_in_the_training_math_resumes(tree, caplog):
    """Training math is fingerprinted by what it computes: a new comment, a reworded docstring and a reflowed
    line in the loss's module resume a run, silently."""
    root, checkpointer = tree
    module = root / "blat_core" / "models" / "biencoder.py"
    text = module.read_text()
    assert LOSS in text and '"""Mean of the audio->text' in text
    text = text.replace('"""Mean of the audio->text', '"""The mean of the audio->text')  # a docstring
    text = text.replace(LOSS, LOSS.replace(" + ", " +  # both directions\n            ") + "  # SPEC §2")
    module.write_text(text + "\n# edited\n")
    with caplog.at_level(logging.WARNING):
        assert checkpointer().load()["step"] == 7
    assert not caplog.records


def test_a_change_to_the_loss_restarts_and_names_the_file(tree, caplog):
    root, checkpointer = tree
    module = root / "blat_core" / "models" / "biencoder.py"  # the symmetric InfoNCE loss
    module.write_text(module.read_text().replace(LOSS, LOSS.replace("/ 2", "/ 3")))
    with caplog.at_level(logging.WARNING):
        assert checkpointer().load() is None
    assert "starting over" in caplog.text and "training code changed: blat_core/models/biencoder.py" in caplog.text


def test_another_environment_or_params_restart(tree, caplog, monkeypatch):
    root, checkpointer = tree
    real = checkpointing.environment
    monkeypatch.setattr(checkpointing, "environment", lambda: {**real(), "torch": "0.0.1"})
    with caplog.at_level(logging.WARNING):
        assert checkpointer().load() is None
    assert "the environment changed (torch" in caplog.text
    monkeypatch.setattr(checkpointing, "environment", real)
    checkpointing._code_digests.cache_clear()
    other = checkpointing.fingerprint({"lr": 3.0e-4}, [], [root / "stages" / "pretrain.py"], root=root)
    with caplog.at_level(logging.WARNING):
        assert checkpointing.Checkpointer(checkpointer().path.parent, other).load() is None
    assert "params or input files changed" in caplog.text
