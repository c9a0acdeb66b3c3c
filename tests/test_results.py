"""helpers.results on run records written into a temporary runs folder."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from helpers import config, results
from helpers.runs import RunRecord, new_run_folder


def _record(
    dataset="pbc",
    model="resnet18",
    profile="quick",
    source="real",
    bacc=0.8,
    acc=0.85,
    train_time=120.0,
    created="2026-01-01T00:00:00+00:00",
    gpu=None,
    chance: dict | None = None,
    name: str | None = None,
) -> RunRecord:
    """A run record with the fields helpers.train writes, saved in the current runs folder."""
    run_id, folder = new_run_folder(dataset, model, profile)
    hw = {"device": "cuda" if gpu else "cpu", "cpu": "Test CPU", "cpu_cores": 2}
    if gpu:
        hw["gpu"] = gpu
    summary = {"name": dataset, "task": "multiclass", "source": source, "n": 320}
    test = {
        "accuracy": acc,
        "balanced_accuracy": bacc,
        "kappa": bacc - 0.05,
        "error_rate": 1 - acc,
        "macro_auroc": 0.97,
        "macro_f1": 0.8,
        "per_class": {},
        "confusion_matrix": [[1]],
    }
    rec = RunRecord(
        run_id=run_id,
        folder=folder,
        created=created,
        config={
            "model": model,
            "pretrained": False,
            "image_size": 64,
            "epochs": 8,
            "recipe": "one_cycle",
            "batch_size": 64,
            "mixup_alpha": 0.0,
            "label_smoothing": 0.1,
            "train_time_s": train_time,
            **({"train_config": {"name": name}} if name else {}),
        },
        profile=config.get_profile(profile).as_dict(),
        data={"train": summary, "valid": {**summary, "n": 40}, "test": {**summary, "n": 80}},
        environment={"hardware": hw},
        history=[],
        epoch_times_s=[train_time],
        wall_time_s=train_time + 10,
        metrics={"valid": test, "test": test, **({"test_chance": chance} if chance is not None else {})},
    )
    rec.save()
    return rec


def test_no_runs_still_gives_the_reference_tables(tmp_workdirs):
    df = results.results_table()
    assert set(df["kind"]) == {"reference"}
    assert {"pbc", "bloodmnist", "nih", "cbis_ddsm"} <= set(df["task"])
    assert "No run records" in results.describe_runs()
    ax = results.plot_accuracy_vs_time(task="pbc")
    assert ax.get_ylabel().startswith("balanced_accuracy")


def test_runs_sit_beside_the_references_of_their_task(tmp_workdirs):
    _record(bacc=0.81, acc=0.86)
    _record(dataset="bloodmnist", model="resnet18", bacc=0.9, acc=0.93)
    df = results.results_table(task="pbc")
    assert set(df["task"]) == {"pbc"}
    runs = df[df.kind == "run"]
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row.balanced_accuracy == pytest.approx(0.81) and row.error_rate == pytest.approx(0.14)
    assert row.auroc == pytest.approx(0.97)  # macro AUROC of the run fills the auroc column
    assert row.profile == "quick" and row.data_source == "real" and row.status == "result"
    assert row.hardware == "Test CPU, 2 cores" and row.train_time_s == 120.0
    refs = df[df.kind == "reference"].set_index("model")
    assert refs.loc["ResNet18", "balanced_accuracy"] == 0.98 and refs.loc["ViT-Large", "accuracy"] == 0.96
    assert df.iloc[0]["kind"] == "run"  # runs come first
    by_task = results.results_by_task(task=["pbc", "bloodmnist"])
    assert list(by_task) == ["pbc", "bloodmnist"]
    blood = by_task["bloodmnist"]
    assert (blood.kind == "reference").sum() == 7 and "kappa" in blood.columns
    assert "balanced_accuracy" not in by_task["bloodmnist"].columns or blood.balanced_accuracy.notna().any()


def test_smoke_and_synthetic_runs_are_marked_and_can_be_left_out(tmp_workdirs):
    _record(profile="smoke", created="2026-01-02T00:00:00+00:00")
    _record(source="synthetic", created="2026-01-03T00:00:00+00:00")
    _record(created="2026-01-01T00:00:00+00:00")
    df = results.results_table(task="pbc", references=False)
    assert list(df.status) == ["synthetic data (not a result)", "smoke run (not a result)", "result"]
    assert len(results.results_table(task="pbc", references=False, results_only=True)) == 1
    assert "1 count as results, 2 do not" in results.describe_runs()
    assert set(results.results_table(task="pbc", profile="quick", references=False).profile) == {"quick"}
    only_real = results.results_table(task="pbc", source="real", references=False)
    assert set(only_real.data_source) == {"real"} and len(only_real) == 2
    with pytest.raises(ValueError, match="data source"):
        results.results_table(source="fake")


def test_a_new_run_appears_without_any_edit(tmp_workdirs):
    before = results.results_table(task="pbc", references=False)
    assert before.empty
    rec = _record()
    after = results.results_table(task="pbc", references=False)
    assert list(after.who) == [rec.run_id]


def test_plot_draws_one_point_per_run_and_hollow_for_smoke(tmp_workdirs):
    _record(train_time=60.0, bacc=0.75)
    _record(profile="smoke", train_time=5.0, bacc=0.2)
    ax = results.plot_accuracy_vs_time(task="pbc")
    offsets = [c.get_offsets() for c in ax.collections]
    points = np.concatenate([o for o in offsets if len(o)])
    assert {(round(float(x), 3), round(float(y), 3)) for x, y in points} == {(1.0, 0.75), (round(5 / 60, 3), 0.2)}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("not a result" in t for t in legend)
    # references of thesis 004 have no training time: drawn as horizontal lines
    assert len([ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]) == 4


def test_split_and_unknown_values(tmp_workdirs):
    _record()
    assert results.run_rows(split="valid").iloc[0].split == "valid"
    with pytest.raises(ValueError, match="split"):
        results.run_rows(split="train")
    mcc = results.run_rows().iloc[0].mcc  # not computed for runs: missing, not zero
    assert mcc is None or math.isnan(mcc)


@pytest.mark.slow
def test_a_real_training_run_is_read_back(tmp_workdirs):
    """End to end: helpers.train writes a record that results_table reads (tiny synthetic arrays)."""
    from helpers.data.base import ImageDataset
    from helpers.train import get_config, train

    rng = np.random.default_rng(0)

    def split(name, n):
        labels = np.arange(n) % 2
        images = (rng.integers(0, 60, (n, 16, 16, 3)) + labels[:, None, None, None] * 150).astype(np.uint8)
        return ImageDataset("pbc", name, "binary", ["a", "b"], images, labels.astype(np.int64), "synthetic")

    setup = get_config("one_cycle").replace(epochs=1, image_size=16, batch_size=16, bootstrap=0)
    rec = train(
        "resnet18", (split("train", 32), split("valid", 16), split("test", 16)), setup, profile="smoke", progress=False
    )
    df = results.results_table(task="pbc")
    run = df[df.kind == "run"].iloc[0]
    assert run.who == rec.run_id and run.status == "smoke run + synthetic data (not a result)"
    assert 0.0 <= run.accuracy <= 1.0 and run.train_time_s > 0 and run.resolution == 16


def test_top_losses_per_class_and_confusion():
    classes = ["a", "b", "c"]
    y = np.array([0, 1, 2, 2])
    probs = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])
    top = results.top_losses(y, probs, classes, k=2)
    assert list(top["index"]) == [3, 1]  # p_true 0.1 then 0.3
    assert top.iloc[0].true == "c" and top.iloc[0].predicted == "a"
    assert top.iloc[0].loss == pytest.approx(-math.log(0.1))
    with pytest.raises(ValueError):
        results.top_losses(y, probs[:2], classes)
    cm = [[2, 0], [1, 3]]
    norm = results.normalise_confusion(cm)
    assert norm.tolist() == [[1.0, 0.0], [0.25, 0.75]]
    assert results.normalise_confusion([[0, 0], [1, 1]])[0].tolist() == [0.0, 0.0]
    ax = results.plot_confusion(cm, ["x", "y"], normalize=True)
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.25", "0.75"]  # the empty cell stays blank
    table = results.per_class_table({"per_class": {"x": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4}}})
    assert table.loc["x", "support"] == 4 and table.loc["x", "recall"] == 0.5
    with pytest.raises(ValueError, match="per-class"):
        results.per_class_table({"mean_auroc": 0.8})


def test_error_rate_mismatches_finds_rows_that_cannot_both_be_right():
    import pandas as pd

    from helpers import references

    table = pd.DataFrame(
        {
            "model": ["ok", "rounded", "bad", "missing"],
            "accuracy": [0.95, 0.99, 0.96, None],
            "error_rate": [0.05, 0.012, 0.03, 0.1],
        }
    )
    found = results.error_rate_mismatches(table, decimals=2)
    assert list(found["model"]) == ["bad"] and found["1 - accuracy"].iloc[0] == pytest.approx(0.04)
    # thesis 004's Table 2 as the book keeps it: ViT-Large (0.96 with 0.03) is the one inconsistent row
    assert list(results.error_rate_mismatches(references.wide_table("pbc"))["model"]) == ["ViT-Large"]


def _stained_cells(n: int = 4, size: int = 32) -> np.ndarray:
    """Pale fields with a purple (blue - green = 90) disc at a different place in each."""
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size, 3), np.uint8) + np.array([235, 215, 200], np.uint8)
    for k in range(n):
        cy, cx = 8 + 4 * k, 24 - 4 * k
        images[k][(yy - cy) ** 2 + (xx - cx) ** 2 < 25] = (90, 40, 130)
    return images


class _ColourNet(torch.nn.Module):
    """One 1×1 convolution that answers to blue minus green (``sign=1``) or green minus blue (``-1``)."""

    def __init__(self, sign: float):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([0.0, -sign, sign]).view(1, 3, 1, 1))
        self.head = torch.nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_stain_pointing_scores_maps_on_the_stained_cell():
    images = _stained_cells()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    on_cell = results.stain_pointing(_ColourNet(1.0).eval(), x, images)
    off_cell = results.stain_pointing(_ColourNet(-1.0).eval(), x, images)
    assert on_cell["n"] == 4 and on_cell["no_stain"] == 0 and "Grad-CAM on conv" in on_cell["method"]
    assert on_cell["ratio"] > 5 and on_cell["hit_rate"] == 1.0, on_cell
    assert off_cell["ratio"] < 1 and off_cell["hit_rate"] == 0.0, off_cell
    blank = images.copy()
    blank[0] = 230  # no stained pixel: left out and counted
    assert results.stain_pointing(_ColourNet(1.0).eval(), x, blank)["no_stain"] == 1
    with pytest.raises(ValueError, match="4 inputs but 3 images"):
        results.stain_pointing(_ColourNet(1.0).eval(), x, images[:3])


def test_repeated_runs_fold_into_the_newest_with_a_count(tmp_workdirs):
    newest = _record(bacc=0.9, created="2026-01-03T00:00:00+00:00")
    _record(bacc=0.8, created="2026-01-02T00:00:00+00:00")  # the same experiment, run again
    other = _record(model="resnet10t", created="2026-01-01T00:00:00+00:00")
    table = results.results_table(task="pbc")
    folded = results.fold_duplicates(table)
    runs = folded[folded["kind"] == "run"]
    assert list(runs.who) == [newest.run_id, other.run_id] and list(runs.runs) == [2, 1]
    assert runs.iloc[0]["balanced_accuracy"] == 0.9  # the newest run's numbers, not a mix
    published = folded[folded["kind"] != "run"]
    assert len(published) == int((table["kind"] != "run").sum()) and set(published.runs) == {1}
    assert results.fold_duplicates(table.iloc[0:0]).empty
    assert "$MEDVIT_RUNS" in results.describe_runs()  # no machine path on the page


def test_missing_from_names_runs_a_page_would_hide():
    import pandas as pd

    runs = pd.DataFrame(
        {"who": ["a", "b", "c"], "kind": "run", "task": "pbc", "model": ["resnet10t", "resnet10t", "vit"]}
    )
    shown = results.fold_duplicates(runs.iloc[[0, 2]].reset_index(drop=True), keys=("task", "model"))
    assert results.missing_from(shown, runs, keys=("task", "model")) == []  # b is folded into a
    assert results.missing_from(shown.iloc[[0]], runs, keys=("task", "model")) == ["c"]


def test_run_rows_say_which_book_build_made_a_run(monkeypatch):
    from helpers import runinfo

    monkeypatch.setenv("MEDVIT_BUILD", "book-test")
    record = {"run_id": "r1", "environment": runinfo.collect("smoke"), "config": {}, "data": {}, "profile": {}}
    assert results.run_rows(runs=[record]).loc[0, "build"] == "book-test"


def test_folding_tells_backbones_apart_and_ignores_dtypes():
    import pandas as pd

    def record(run_id, backbone):
        cfg = {"model": "thesis000_resnet50", "model_kwargs": {"backbone": backbone}, "epochs": 12}
        return {"run_id": run_id, "config": cfg, "data": {"train": {"name": "nih_64px", "n": 280}}, "profile": {}}

    rows = results.run_rows(runs=[record("a", "resnet10t"), record("b", "vit_tiny_patch16_224")])
    assert list(rows["model"]) == ["thesis000_resnet50 (resnet10t)", "thesis000_resnet50 (vit_tiny_patch16_224)"]
    rows["kind"] = "run"
    folded = results.fold_duplicates(rows)
    assert len(folded) == 2
    as_floats = folded.astype({"n_train": float, "epochs": float})  # as a concat with references leaves them
    assert results.missing_from(as_floats.iloc[[0]], rows) == ["b"]
    assert results.missing_from(pd.concat([as_floats, as_floats.iloc[:0]]), rows) == []


def test_runs_at_chance_are_marked_ranked_last_and_kept_out_of_the_summary(tmp_workdirs):
    above = {"no_better_than_chance": False, "constant": False}
    _record(model="vit", bacc=0.45, chance={"no_better_than_chance": True, "constant": False}, name="vit-quick")
    _record(model="resnet10t", bacc=0.81, chance=above, name="resnet10t-quick")
    _record(model="lite0", bacc=0.86, chance=above, name="lite0-quick")
    _record(model="cnn", bacc=0.125, chance={"no_better_than_chance": True, "constant": True}, name="cnn-quick")
    _record(model="old", bacc=0.95)  # no chance check recorded: not checked, never ranked above a checked run
    table = results.ranked(results.results_by_task(task="pbc")["pbc"], "pbc")
    runs = table[table.kind == "run"]
    assert list(runs["run"])[:2] == ["lite0-quick", "resnet10t-quick"]
    assert set(runs["vs_chance"].iloc[2:]) == {"AT CHANCE", "AT CHANCE (constant)", "not checked"}
    assert (table.kind.iloc[len(runs) :] == "reference").all()  # published numbers after every run
    summary = results.task_summary(table, "pbc")
    assert "best run that beats chance is lite0-quick, balanced_accuracy 0.860" in summary
    assert "2 run(s) are at chance and are not compared: vit-quick, cnn-quick" in summary
    assert "best published number is 0.990 (ResNet34 (thesis 004), 224 px, pretraining ImageNet)" in summary
    assert "old" not in summary
    blood = results.task_summary(results.results_by_task(task="bloodmnist")["bloodmnist"], "bloodmnist")
    assert "no run of this book on this task" in blood and "pretraining not stated" in blood
