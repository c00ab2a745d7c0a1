"""``benchmarks/one_class.py``: the protocol on two small classes, its table and its verdict, and the README it writes
(never timed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    """A script of benchmarks/ as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_protocol_scores_every_model_and_baseline_and_writes_its_table(tmp_path, monkeypatch):
    one_class = load_script("one_class")
    monkeypatch.setattr(one_class, "STEPS", {"dense": 3, "conv": 1, "denoising": 3, "vae": 3})
    monkeypatch.setattr(one_class, "ELBO_SAMPLES", 2)
    result = one_class.run("mnist-5k", [0, 1], 0, lambda line: None)
    assert set(result["auroc"]) == set(one_class.COLUMNS)
    assert all(len(values) == 2 and all(0.0 <= value <= 1.0 for value in values)
               for values in result["auroc"].values())
    assert result["train_images"] == [400, 400] and result["steps"]["dense"] == [4, 4]  # 1 epoch of 4 batches
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nbefore\n", encoding="utf-8")
    info = {"cpu": "a processor", "family/model": "6/1", "cores": 2, "blas": [], "forced": {}}
    section = one_class.table([result], info, 60.0, 50.0)
    assert "| **mean** |" in section and "1.0 min (0.8 min of CPU)" in section
    one_class.write_readme(readme, section)
    one_class.write_readme(readme, section)  # a second run replaces the table between its markers
    text = readme.read_text(encoding="utf-8")
    assert text.count(one_class.START) == 1 and text.count("| **mean** |") == 1 and "before" in text


def test_the_verdict_names_the_best_of_each_side_and_the_target():
    one_class = load_script("one_class")
    means = {"dense": 0.94, "conv": 0.9, "denoising": 0.9, "vae": 0.7, "vae-mse": 0.92, "pca": 0.9,
             "isolation-forest": 0.93, "one-class-svm": 0.89}
    result = {"data": "fashion-mnist", "auroc": {kind: [value] for kind, value in means.items()}}
    assert one_class.verdict(result).endswith("scratchae is ahead. The target (at least 0.93, ahead of every "
                                              "baseline) is met.")
    result["auroc"]["isolation-forest"] = [0.95]
    text = one_class.verdict(result)
    assert "best baseline: IsolationForest, 0.950: scratchae is behind" in text and text.endswith("is not met.")
