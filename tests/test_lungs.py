"""The lung pathologies chapter's helpers: the 64-px ChestX-ray14 reader, thesis 000's preprocessing,
its configurations and tuberculosis branch, and the per-finding evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.data.chestxray import NIH_FINDINGS, read_chexnet_lists, read_nih_64px
from helpers.data.splits import assert_no_patient_overlap
from helpers.data.synthetic import write_synthetic
from helpers.preprocessing import chest_steps, prepare_file

# ----------------------------------------------------------------------------- data


def test_nih_64px_real_labels_and_split_from_the_lists(real_data):
    cat = read_nih_64px(real_data / "nih_64px")
    files = sorted((real_data / "nih_64px" / "images").glob("*.png"))
    assert len(cat) == len(files) and cat.labels.shape == (len(files), 14)
    lists = read_chexnet_lists(real_data / "nih").set_index("image")
    for name, row, split in zip(cat.ids[::37], cat.labels[::37], cat.official_split[::37]):
        assert np.array_equal(row, lists.loc[name, NIH_FINDINGS].to_numpy(dtype=np.float32))
        assert split == lists.loc[name, "split"]
    assert cat.report["split_from"].startswith("CheXNet") and cat.name == "nih_64px"
    assert_no_patient_overlap({s: cat.patient_ids[cat.official_split == s] for s in ("train", "valid", "test")})
    # the Data_Entry sample's rows agree with the lists where both have the image
    assert (cat.labels.sum(1) == 0).any() and (cat.labels.sum(0) > 0).all()


def test_nih_64px_without_labels_says_where_it_looked(tmp_path):
    images = tmp_path / "nih_64px" / "images"
    images.mkdir(parents=True)
    src = write_synthetic("nih", tmp_path / "gen", patients=3, size=16)
    png = next(src.glob("images_001/images/*.png"))
    (images / png.name).write_bytes(png.read_bytes())
    with pytest.raises(FileNotFoundError, match="labels/\\*_list.txt"):
        read_nih_64px(tmp_path / "nih_64px")


def test_nih_64px_stand_in_layout_reads(tmp_path):
    root = write_synthetic("nih_64px", tmp_path / "nih_64px", patients=6, size=16)
    cat = read_nih_64px(root)
    assert len(cat) > 0 and cat.labels.shape[1] == 14 and cat.report["labels_folder"] == str(root)


# ----------------------------------------------------------------------------- preprocessing


def test_chest_steps_equalise_three_equal_channels_and_flip(real_data):
    path = sorted((real_data / "nih" / "images").glob("*.png"))[0]
    steps = chest_steps(path, 64)
    grey, eq, x, flipped = (steps[k] for k in ("decoded (grey)", "equalised", "model input", "flipped"))
    assert grey.ndim == 2 and eq.shape == grey.shape and x.shape == (64, 64, 3) and x.dtype == np.uint8
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()

    # equalised: the cumulative histogram is close to a straight line (it is not before)
    def off_line(img: np.ndarray) -> float:
        counts = np.bincount(img.ravel(), minlength=256)
        levels = np.flatnonzero(counts)
        return float(np.abs(np.cumsum(counts)[levels] / img.size - (levels + 1) / 256).max())

    assert off_line(eq) < 0.1 and off_line(eq) < off_line(grey) / 2
    assert np.array_equal(flipped, x[:, ::-1])
    # the same rule as the training cache and the app
    same, _ = prepare_file(path, 64, 3, "equalize")
    assert np.array_equal(same, x)


# ----------------------------------------------------------------------------- loss, configurations, branch


def test_weighted_bce_against_a_hand_computation():
    import math

    import torch

    from helpers.losses import WeightedBCEWithLogits, chexnet_weights

    train = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], dtype=np.float32)  # 1 of 4 positive for each output
    w_pos, w_neg = chexnet_weights(train)
    assert w_neg.tolist() == [0.25, 0.25] and w_pos.tolist() == [0.75, 0.75]
    z = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    def s(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    # minus the weighted log-likelihood, summed over the two outputs, averaged over the two images
    img1 = -(0.75 * math.log(s(0.0)) + 0.25 * math.log(1 - s(2.0)))
    img2 = -(0.25 * math.log(1 - s(-1.0)) + 0.75 * math.log(s(0.5)))
    loss = WeightedBCEWithLogits.from_labels(train)(z, y)
    assert float(loss) == pytest.approx((img1 + img2) / 2, rel=1e-6) and float(loss) > 0


def test_label_weights_come_from_the_training_split_only(tmp_workdirs):
    from helpers.configs import lungs_experiment
    from helpers.data.base import ImageDataset
    from helpers.train import train

    rng = np.random.default_rng(0)
    splits = []
    for split, n, rate in (("train", 32, 0.25), ("valid", 16, 0.75), ("test", 16, 0.5)):
        labels = (rng.random((n, 3)) < rate).astype(np.float32)
        labels[0] = 1.0  # every split holds each label
        images = rng.integers(0, 255, (n, 32, 32, 3)).astype(np.uint8)
        splits.append(ImageDataset("toy", split, "multilabel", ["a", "b", "c"], images, labels, "synthetic"))
    exp = lungs_experiment("cnn", "smoke")
    record = train(exp.model, tuple(splits), exp.config.replace(image_size=32), profile="smoke", progress=False)
    loss = record.learner.loss_func
    assert torch_allclose(loss.neg_weight, splits[0].labels.mean(0))
    everything = np.concatenate([s.labels for s in splits])
    assert not torch_allclose(loss.neg_weight, everything.mean(0))
    assert record.config["stage_epochs"] == [1, 1, 1]
    # the card keeps each label's threshold at a stated specificity on the validation split, for the app
    from helpers.checkpoints import load_checkpoint
    from helpers.metrics import f1_optimal_threshold

    _, card = load_checkpoint(record.checkpoint)
    y_valid = (splits[1].labels > 0.5).astype(int)
    found = record.metrics["findings"]["per_label"]
    with_threshold = {k for k, v in found.items() if v["threshold"] is not None}
    assert card.thresholds == {k: pytest.approx(found[k]["threshold"]) for k in with_threshold}
    assert card.threshold_rule["specificity"] == 0.9 and set(card.findings) == {"a", "b", "c"}
    assert all(found[k]["valid_specificity"] >= 0.9 for k in with_threshold)
    assert with_threshold == {k for j, k in enumerate("abc") if y_valid[:, j].sum() >= 5}  # too few: none
    assert f1_optimal_threshold(y_valid[:, 0], y_valid[:, 0] * 0.9)[0] == pytest.approx(0.9)


def test_the_app_reads_each_findings_threshold():
    from helpers.app.core import Result
    from helpers.app.render import result_html
    from helpers.cards import CardError, ModelCard

    card = ModelCard("resnet18", "multilabel", ("a", "b"), 32, 1, (0.5,), (0.25,), thresholds={"a": 0.3})
    assert ModelCard.from_json(card.to_json()).thresholds == {"a": 0.3}
    with pytest.raises(CardError, match="thresholds"):
        card.replace(thresholds={"c": 0.3})
    r = Result("x.png", probabilities={"a": 0.4, "b": 0.45}, multilabel=True, thresholds=card.thresholds)
    assert r.label == "a" and r.threshold("b") == 0.5  # a is present at 0.4 >= 0.3; b is not at 0.45 < 0.5
    page = result_html(r)
    assert "threshold 0.300" in page and "threshold 0.500" in page and "chosen on validation" in page


def torch_allclose(a, b) -> bool:
    import torch

    return bool(torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)))


def test_thesis000_configurations():
    from helpers.configs import get_config, lungs_experiment, lungs_experiments
    from helpers.data.loaders import Augment

    full = get_config("thesis000_cnn")
    assert (full.schedule, full.stage_epochs, full.epochs, full.optimizer, full.lr) == (
        "three_stage",
        (35, 25, 10),
        70,
        "adam",
        1e-4,
    )
    assert full.plateau.factor == 0.1 and full.plateau.patience == 10 and full.class_weights == "chexnet"
    assert full.augment == Augment.flip_only() and full.pretrained and full.image_size == 1024
    vit = get_config("thesis000_vit")
    assert vit.model_kwargs == {"backbone": "vit_base_patch32_384"} and vit.image_size == 384
    assert (
        get_config("thesis000_densenet").image_size == 224
        and lungs_experiment("densenet", "full").model == "densenet121"
    )
    quick = lungs_experiments("quick")
    assert set(quick) == {"cnn", "vit", "lite0"} and all(
        not e.config.pretrained and e.config.image_size == 64 for k, e in quick.items() if k != "lite0"
    )
    lite0 = quick["lite0"].config
    assert lite0.pretrained and lite0.image_size == 96 and lite0.schedule == "one_cycle"
    assert quick["lite0"].config.model_kwargs == {"backbone": "tf_efficientnet_lite0"}
    assert lungs_experiment("lite0", "smoke").config.image_size == 32
    assert all(e.config.class_weights == "chexnet" for e in quick.values())
    assert lungs_experiment("cnn", "smoke").config.schedule == "three_stage"
    with pytest.raises(KeyError, match="densenet"):
        lungs_experiment("densenet", "quick")


def test_thesis000_head_and_stages():
    import torch

    from helpers.models.vision import create_model, model_stages

    net = create_model("thesis000_resnet50", 15, img_size=64, backbone="resnet10t")
    stages = model_stages(net)
    assert stages["head"] == ["fc1.weight", "fc1.bias", "head.weight", "head.bias"]  # both dense layers
    assert stages["last_block"][0].startswith("backbone.layer4.")
    assert net.fc1.out_features == 256 and net.drop.p == 0.25 and net(torch.zeros(2, 3, 64, 64)).shape == (2, 15)
    vit = create_model("thesis000_resnet50", 15, img_size=64, backbone="vit_tiny_patch16_224", patch_size=8, depth=2)
    assert model_stages(vit)["last_block"][0].startswith("backbone.blocks.1.")


def test_tb_branch_trains_only_the_branch():
    import torch

    from helpers.models.branch import TBExtended, fit_branch
    from helpers.models.vision import create_model

    torch.manual_seed(0)
    detector = create_model("thesis000_resnet50", 15, img_size=32, backbone="resnet10t")
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    model = TBExtended(detector)
    layers = [m for m in model.branch.net]
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert (layers[0].in_features, layers[0].out_features, layers[2].p, layers[3].out_features) == (256, 128, 0.2, 1)
    x = torch.randn(24, 3, 32, 32)
    y = np.array([0, 1] * 12)
    out = fit_branch(model, x, y, epochs=3, batch_size=8)
    assert len(out["loss"]) == 3 and out["trainable"] == 256 * 128 + 128 + 129
    assert all(torch.equal(before[k], v) for k, v in detector.state_dict().items())
    model.eval()
    logits = model(x[:4])
    assert logits.shape == (4, 16) and torch.allclose(logits[:, :15], detector(x[:4]))
    with pytest.raises(ValueError, match="one class"):
        fit_branch(model, x, np.zeros(24))


# ----------------------------------------------------------------------------- evaluation


def test_threshold_is_picked_on_validation_never_on_test():
    from helpers.findings import evaluate_findings

    rng = np.random.default_rng(0)
    y_valid = np.array([[0], [0], [1], [1], [0], [1]])
    p_valid = np.array([[0.1], [0.2], [0.3], [0.35], [0.25], [0.9]])  # best F1 on validation at 0.3
    y_test = rng.integers(0, 2, (40, 1))
    p_test = np.clip(y_test * 0.5 + rng.random((40, 1)) * 0.6, 0, 1)
    report = evaluate_findings(y_valid, p_valid, y_test, p_test, ["a"], n_boot=50, min_positives=1)
    assert report.thresholds["a"] == pytest.approx(0.3)
    assert report.table.loc["a", "threshold (valid)"] == pytest.approx(0.3)
    # another test split changes the scores, never the threshold
    other = evaluate_findings(y_valid, p_valid, y_test, 1 - p_test, ["a"], n_boot=0, min_positives=1)
    assert other.thresholds == report.thresholds
    pred = (p_test[:, 0] >= 0.3).astype(int)
    tp = int((pred & y_test[:, 0]).sum())
    f1 = 2 * tp / (pred.sum() + y_test[:, 0].sum())
    assert report.table.loc["a", "f1@valid"] == pytest.approx(f1)


def test_findings_means_and_intervals():
    from helpers.findings import evaluate_findings

    rng = np.random.default_rng(1)
    y = (rng.random((120, 3)) < [0.4, 0.05, 0.3]).astype(int)
    y[:, 1] = 0
    y[:3, 1] = 1  # three positives only
    p = np.clip(y * 0.4 + rng.random((120, 3)) * 0.6, 0, 1)
    report = evaluate_findings(y[:40], p[:40], y[40:], p[40:], ["a", "b", "c"], n_boot=100, min_positives=10)
    assert report.enough == ["a", "c"]
    t = report.table
    assert report.means["enough"]["value"] == pytest.approx(t.loc[["a", "c"], "auroc"].mean())
    for name in ("a", "c"):
        assert t.loc[name, "auroc_low"] <= t.loc[name, "auroc"] <= t.loc[name, "auroc_high"]
    m = report.means["enough"]
    assert m["low"] <= m["value"] <= m["high"] and m["findings"] == 2


def test_thesis_global_15_mixes_two_definitions():
    from helpers.findings import thesis_global_means
    from helpers.references import reference_table

    t47 = reference_table(source="thesis000", label=None)
    t47 = t47[t47.table == "Table 4.7"]
    sixteen = "14 + COVID-19 + Healthy"
    for metric, global15_is in (("auroc", "14 findings + COVID-19"), ("auprc", sixteen), ("f1", sixteen)):
        rows = t47[t47.metric == metric].set_index("label")["value"].to_dict()
        means = thesis_global_means(rows)
        assert means["14 findings"] == pytest.approx(rows["Global-14"], abs=5e-4)
        assert means[global15_is] == pytest.approx(rows["Global-15"], abs=5e-4)


def test_table_4_9_matches_the_thesis_text():
    from pathlib import Path

    from helpers.references import REFERENCES

    seeds = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
    files = sorted(seeds.glob("000_*.txt")) if seeds.is_dir() else []
    if not files:
        pytest.skip(f"thesis text 000_*.txt not found in {seeds} (it lives beside the repository)")
    text = files[0].read_text(encoding="utf-8")
    i = text.index("\tMethod\tAUC-ROC\tRadiol.")
    block = [line for line in text[i : text.index("Cuadro 4.9", i)].splitlines() if "\t" in line][1:]
    t49 = {(r.label, r.model): r.value for r in REFERENCES if r.table == "Table 4.9"}
    names = {"Pleural-Thick.": "Pleural_Thickening", "Proposal": "ResNet-50 (thesis 000)"}
    checked, lead = 0, 0
    for line in block:
        finding, method, best, radiol = (c.strip() for c in line.split("\t"))
        finding = names.get(finding, finding)
        assert t49[(finding, names.get(method, method))] == pytest.approx(float(best))
        checked += 1
        if radiol != "—":
            assert t49[(finding, "Radiologists")] == pytest.approx(float(radiol.rstrip("*")))
            lead += radiol.endswith("*")
            assert radiol.endswith("*") == (float(radiol.rstrip("*")) > float(best))
    assert checked == 15 and lead == 8  # "Human radiologists lead in eight ... of the fifteen"
    # each cell is the best of its Table 4.8 row
    t48 = [r for r in REFERENCES if r.table in ("Table 4.8", "Table 4.7") and r.metric == "auroc"]
    for (finding, model), value in t49.items():
        if model != "Radiologists":
            assert value == pytest.approx(max(r.value for r in t48 if r.label == finding and r.model != "Radiologists"))


def test_tb_layout_reader_and_stand_in(tmp_path):
    from helpers.data.tb import read_tb_cxr, write_tb_stand_in

    folder = write_tb_stand_in(tmp_path / "shenzhen", n=30, size=32, share_tb=0.5, seed=1)
    (folder / "CXR_png" / "MCUCXR_0007_1.png").write_bytes((folder / "CXR_png" / "CHNCXR_0001_0.png").read_bytes())
    (folder / "CXR_png" / "notes.png").write_bytes(b"")
    cat = read_tb_cxr(folder)
    assert len(cat) == 31 and cat.task == "binary" and cat.classes == ["normal", "tuberculosis"]
    assert cat.labels[cat.ids.index("MCUCXR_0007")] == 1
    for f, y in zip(cat.files, cat.labels):
        assert int(f.stem[-1]) == y
    assert 0 < cat.labels.sum() < len(cat) and any("notes.png" in s["file"] for s in cat.report["skipped"])
    with pytest.raises(FileNotFoundError, match="CXR_png"):
        read_tb_cxr(tmp_path / "empty")
