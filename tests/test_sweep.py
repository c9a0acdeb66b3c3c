"""Sweeps: every combination is executed with papermill; a failing one is reported, the others run."""

from __future__ import annotations

import nbformat
import pytest

from helpers.sweep import combinations, run_sweep, sweep_table


def test_combinations_are_the_full_grid_with_typed_values():
    grid = combinations([("MODEL", ["resnet18", "vit_tiny_patch16_224"]), ("EPOCHS", ["5", "10"])])
    assert grid == [
        {"MODEL": "resnet18", "EPOCHS": 5},
        {"MODEL": "resnet18", "EPOCHS": 10},
        {"MODEL": "vit_tiny_patch16_224", "EPOCHS": 5},
        {"MODEL": "vit_tiny_patch16_224", "EPOCHS": 10},
    ]
    with pytest.raises(ValueError, match="twice"):
        combinations([("A", ["1"]), ("A", ["2"])])
    with pytest.raises(ValueError, match="no values"):
        combinations([("A", [])])


def test_a_failed_combination_does_not_stop_the_others(tmp_path, tmp_workdirs):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("X = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("assert X != 2, 'X is 2'\nprint('done', X * 10)")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    results = run_sweep(path, [("X", ["1", "2"])], jobs=2, out_dir=tmp_path / "out")
    assert [r.ok for r in results] == [True, False]
    assert "X is 2" in results[1].error
    executed = nbformat.read(results[0].folder / "tiny.ipynb", as_version=4)
    assert "done 10" in executed.cells[-1].outputs[0]["text"]
    table = sweep_table(results)
    assert list(table["X"]) == [1, 2] and table["status"][0] == "ok" and table["status"][1].startswith("FAILED")
    with pytest.raises(FileNotFoundError):
        run_sweep(tmp_path / "missing.ipynb", [("X", ["1"])])
