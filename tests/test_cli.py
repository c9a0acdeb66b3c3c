"""The training command line: tasks, configuration files, settings, refusals with clear messages."""

from __future__ import annotations

import pytest

from helpers.__main__ import _train_settings, build_parser
from helpers.training.tasks import TASKS, dataset_for_task, load_config


def test_tasks_name_registry_datasets():
    from helpers.data import DATASETS

    assert set(TASKS.values()) <= set(DATASETS)
    assert dataset_for_task("blood-cells") == "pbc" and dataset_for_task("pneumoniamnist") == "pneumoniamnist"
    with pytest.raises(KeyError, match="unknown task 'kidneys'"):
        dataset_for_task("kidneys")


def test_config_files_yaml_and_toml(tmp_path):
    (tmp_path / "a.yaml").write_text("base: three_stage\nlr: 3.0e-4\nepochs: 6\nplateau: {factor: 0.5}\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert (cfg.recipe, cfg.schedule, cfg.lr, cfg.epochs, cfg.plateau.factor) == (
        "three_stage",
        "three_stage",
        3e-4,
        6,
        0.5,
    )
    (tmp_path / "b.toml").write_text('lr = 0.01\nmonitor = "valid_auroc"\n')
    try:
        cfg = load_config(tmp_path / "b.toml")
    except ValueError as err:  # Python 3.10 has no TOML reader
        assert "Python 3.11" in str(err)
    else:
        assert (cfg.lr, cfg.monitor, cfg.schedule) == (0.01, "valid_auroc", "one_cycle")
    (tmp_path / "bad.yaml").write_text("learning_rate: 0.1\n")
    with pytest.raises(TypeError, match="bad.yaml.*learning_rate"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "none.yml")
    assert load_config("adamw").optimizer == "adamw"


def test_train_flags_become_settings(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 20\n")
    args = build_parser().parse_args(
        ["train", "--task", "blood-cells", "--config", str(tmp_path / "c.yaml"), "--set", "epochs=3", "--lr", "0.02"]
    )
    model, data, cfg, profile = _train_settings(args)
    assert (model, data, cfg.epochs, cfg.lr, profile) == ("resnet18", "pbc", 3, 0.02, None)
    with pytest.raises(SystemExit, match="--task"):
        _train_settings(build_parser().parse_args(["train"]))


def test_sweep_arguments_parse():
    args = build_parser().parse_args(["sweep", "x.ipynb", "-p", "MODEL", "a", "b", "-p", "EPOCHS", "5", "--jobs", "2"])
    assert args.param == [["MODEL", "a", "b"], ["EPOCHS", "5"]] and args.jobs == 2


def test_evaluate_reproduces_the_training_runs_test_metrics(real_data, tmp_workdirs, capsys):
    """`python -m helpers evaluate` on a saved run reads the same test split at the card's size, through
    the inference path, and gets the metrics the training run recorded; other data with other classes
    is refused by name."""
    import json

    from helpers.__main__ import main
    from helpers.train import get_config, train
    from helpers.training.evaluate import evaluate_checkpoint

    setup = get_config("one_cycle").replace(epochs=1, image_size=28, bootstrap=0)
    record = train("resnet18", "pneumoniamnist", setup, profile="smoke", progress=False)
    capsys.readouterr()  # the training run's own output
    assert main(["evaluate", str(record.folder), "--task", "pneumoniamnist", "--profile", "smoke"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = record.metrics["test"]
    assert (result["split"], result["n"], result["source"]) == ("test", test["n"], "real")
    for key in ("auroc", "accuracy", "balanced_accuracy"):
        assert result["metrics"][key] == pytest.approx(test[key], abs=1e-6), key
    with pytest.raises(ValueError, match="classes"):
        evaluate_checkpoint(record.folder, "bloodmnist", profile="smoke")
