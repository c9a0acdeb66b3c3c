"""The reference numbers in helpers.references against the theses' own text.

The thesis text files live beside the repository (``../shared/seeds``); tests that read them skip
with the reason when they are absent (a fresh clone elsewhere).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import references as refs

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"


def _thesis(prefix: str) -> str:
    files = sorted(SEEDS.glob(f"{prefix}_*.txt")) if SEEDS.is_dir() else []
    if not files:
        pytest.skip(f"thesis text {prefix}_*.txt not found in {SEEDS} (it lives beside the repository)")
    return files[0].read_text(encoding="utf-8")


def _value(model: str, metric: str, source: str, dataset: str, label: str = "all", table: str | None = None):
    hits = [
        r
        for r in refs.REFERENCES
        if r.model == model
        and r.metric == metric
        and r.source == source
        and r.dataset == dataset
        and r.label == label
        and (table is None or r.table == table)
    ]
    assert len(hits) == 1, f"expected one record for {model}/{metric}/{label}, found {len(hits)}"
    return hits[0].value


def _numbers(cells: list[str]) -> list[float | None]:
    out = []
    for c in cells:
        c = re.sub(r"<[^>]+>", "", c).replace("*", "").strip()
        out.append(None if c in ("—", "-", "") else float(c))
    return out


# ----------------------------------------------------------------------------- thesis 004


def test_thesis004_table2_matches_the_thesis_text():
    text = _thesis("004")
    rows = {
        "Balanced accuracy": "balanced_accuracy",
        "Accuracy": "accuracy",
        "Kappa score": "kappa",
        "Error rate": "error_rate",
    }
    header = re.search(r"^\s*ResNet18\tResNet34\tViT-Base\tViT-Large\s*$", text, re.M)
    assert header, "Table 2 header not found in thesis 004"
    models = ["ResNet18", "ResNet34", "ViT-Base", "ViT-Large"]
    for name, metric in rows.items():
        m = re.search(rf"^<i>{name}</i>\t(.+)$", text, re.M)
        assert m, f"row {name!r} of Table 2 not found"
        values = _numbers(m.group(1).split("\t"))
        assert len(values) == 4
        for model, v in zip(models, values):
            assert _value(model, metric, "thesis004", "pbc") == pytest.approx(v), (model, metric)


def test_thesis004_findings_rest_on_numbers_in_the_text():
    text = _thesis("004")
    # batch 64 vs 128, MixUp, label smoothing: the statements quote these figures.
    assert "tamaño de 128" in text and "superiores al 0.94" in text
    assert "superando los 0.95" in text and "superar en ambos casos el 0.94" in text
    assert "superar los 0.96 de *accuracy*" in text
    topics = set(refs.findings("thesis004")["topic"])
    assert {"batch size", "MixUp", "label smoothing"} <= topics


# ----------------------------------------------------------------------------- thesis 000


def _block(text: str, start: str, end: str) -> list[str]:
    i = text.index(start)
    j = text.index(end, i)
    return [line for line in text[i:j].splitlines() if "\t" in line]


_NAME_000 = {"Pleural-Thick": "Pleural_Thickening", "Pleural-Thick.": "Pleural_Thickening"}


def test_thesis000_table_4_7_matches_the_thesis_text():
    text = _thesis("000")
    lines = _block(text, "Phatology\tProposal", "Cuadro 4.7")
    checked = 0
    for line in lines[2:]:  # skip the two header lines
        name, *cells = line.split("\t")
        name = _NAME_000.get(name.strip(), name.strip())
        values = _numbers(cells)
        for metric, v in zip(("auprc", "auroc", "f1", "accuracy"), values):
            assert _value("ResNet-50 (thesis 000)", metric, "thesis000", "nih", name, "Table 4.7") == pytest.approx(v)
            checked += 1
    assert checked == 18 * 4


def test_thesis000_table_4_8_matches_the_thesis_text():
    text = _thesis("000")
    lines = _block(text, "\tCRAL\tDR-CNN\tTSNC\tLargeMeta\tCheXNet", "Cuadro 4.8")
    models = ["CRAL", "DR-CNN", "TSNC", "LargeMeta", "CheXNet"]
    checked = 0
    for line in lines[1:]:
        name, *cells = line.split("\t")
        name = _NAME_000.get(name.strip(), name.strip())
        values = _numbers(cells)
        assert len(values) == 7, line
        compared, proposal, radiologists = values[:5], values[5], values[6]
        for model, v in zip(models + ["Radiologists"], compared + [radiologists]):
            if v is None:
                assert not [
                    r for r in refs.REFERENCES if r.table == "Table 4.8" and r.model == model and r.label == name
                ], (model, name)
                continue
            assert _value(model, "auroc", "thesis000", "nih", label=name, table="Table 4.8") == pytest.approx(v)
            checked += 1
        if proposal is not None:  # the thesis's own column repeats Table 4.7
            assert _value("ResNet-50 (thesis 000)", "auroc", "thesis000", "nih", name, "Table 4.7") == pytest.approx(
                proposal
            )
    assert checked >= 14 * 6
    # The headline numbers of the brief.
    assert _value("ResNet-50 (thesis 000)", "auroc", "thesis000", "nih", label="Global-14") == 0.842
    assert _value("CheXNet", "auroc", "thesis000", "nih", label="Global-14") == 0.841
    assert _value("Radiologists", "auroc", "thesis000", "nih", label="Global-14") == 0.872
    assert _value("ResNet-50 (thesis 000)", "auroc", "thesis000", "nih", "COVID-19", "Table 4.7") == 0.991


# ----------------------------------------------------------------------------- thesis 002


def test_thesis002_numbers_match_the_thesis_text():
    text = _thesis("002")
    own = {"accuracy": "62,17 %", "specificity": "78,35%", "sensitivity": "36,73%"}
    for metric, printed in own.items():
        assert printed in text
        value = float(printed.rstrip("% ").replace(",", ".")) / 100
        assert _value("small CNN (thesis 002)", metric, "thesis002", "cbis_ddsm") == pytest.approx(value)
    table = {
        "AlexNet": "74,68 %",
        "GoogleNet": "76.01 %",
        "ResNet-18": "72,23 %",
        "ResNet-50": "71,09 %",
        "ResNet-101": "71,47 %",
    }
    for model, printed in table.items():
        m = re.search(rf"^{re.escape(model)}\t{re.escape(printed)}\t(.+)$", text, re.M)
        assert m, f"{model} row not found in thesis 002"
        value = float(printed.rstrip("% ").replace(",", ".")) / 100
        assert _value(model, "accuracy", "thesis002", "cbis_ddsm") == pytest.approx(value)
        hours = sum(float(n) / (60 if u == "min" else 1) for n, u in re.findall(r"(\d+)\s*(h|min)", m.group(1)))
        rec = [r for r in refs.REFERENCES if r.model == model and r.source == "thesis002"][0]
        assert rec.train_time_s == pytest.approx(hours * 3600)
    assert re.search(r"AlexNet\tLinear\t91\.3% \(0\.001\)\t0\.97", text)
    assert _value("AlexNet features + SVM (linear kernel)", "accuracy", "thesis002", "cbis_ddsm") == 0.913


# ----------------------------------------------------------------------------- the module itself


def test_medmnist_baselines_cover_the_four_datasets_at_both_resolutions():
    df = refs.reference_table(source="yang2023medmnist")
    for dataset in ("bloodmnist", "pneumoniamnist", "breastmnist", "chestmnist"):
        sub = df[df.dataset == dataset]
        assert set(sub.resolution.dropna().astype(int)) == {28, 224}
        assert len(sub) == 14  # 7 methods x (AUC, ACC)
    assert _value("ResNet-18 (28)", "accuracy", "yang2023medmnist", "bloodmnist") == 0.958
    assert _value("ResNet-18 (28)", "auroc", "yang2023medmnist", "bloodmnist") == 0.998


def test_reference_table_filters_and_rejects_unknown_names():
    pbc = refs.reference_table(task="pbc")
    assert set(pbc.source) == {"thesis004"} and len(pbc) == 16
    assert set(refs.reference_table(source="thesis000").table) == {"Table 4.7", "Table 4.8"}
    assert "Table 4.9" in set(refs.reference_table(source="thesis000", label=None).table)
    per_finding = refs.reference_table(task="nih", label=None)
    assert len(per_finding) > len(refs.reference_table(task="nih"))
    assert set(refs.reference_table(task="nih").label) == {"Global-14"}
    with pytest.raises(ValueError, match="unknown task"):
        refs.reference_table(task="pcb")
    with pytest.raises(ValueError, match="unknown source"):
        refs.reference_table(source="thesis009")


def test_records_validate_their_fields():
    with pytest.raises(ValueError, match="metric"):
        refs.Reference("thesis004", "T", "pbc", "m", "acc", 0.5)
    with pytest.raises(ValueError, match="fraction"):
        refs.Reference("thesis004", "T", "pbc", "m", "accuracy", 62.17)
    with pytest.raises(ValueError, match="dataset"):
        refs.Reference("thesis004", "T", "pcb", "m", "accuracy", 0.5)


def test_wide_table_is_thesis004_table2():
    wide = refs.wide_table("pbc").set_index("model")
    assert list(wide.index) == ["ResNet18", "ResNet34", "ViT-Base", "ViT-Large"]
    assert wide.loc["ResNet34", "balanced_accuracy"] == 0.99
    assert wide.loc["ViT-Large", "error_rate"] == 0.03
    assert refs.main_metric("pbc") == "balanced_accuracy"


def test_thesis004_protocol_matches_the_thesis_statements():
    text = _thesis("004")
    proto = refs.THESIS004_PROTOCOL
    # batch 64 for everything kept; 128 only in the batch-size test
    assert "por defecto, 64" in text and "tamaño de 128" in text
    assert {p["batch_size"] for k, p in proto.items() if k != "vit_base_bs128"} == {64}
    assert proto["vit_base_bs128"]["batch_size"] == 128
    # every Table 2 column has exactly one configuration, and its model family matches
    table2 = {p["table2"]: p for p in proto.values() if p["table2"]}
    assert set(table2) == set(refs.wide_table("pbc")["model"])
    assert table2["ViT-Base"]["mixup"] and not table2["ViT-Base"]["label_smoothing"]
    assert table2["ViT-Large"]["mixup"] and table2["ViT-Large"]["label_smoothing"] > 0
    assert table2["ResNet18"]["model"].startswith("resnet18") and table2["ViT-Large"]["model"].startswith("vit_large")
    # ViTs pretrained on ImageNet-21k, as the thesis says (BiT-style transfer)
    assert "ImageNet-21k" in text
    assert all("in21k" in p["model"] for p in proto.values() if p["model"].startswith("vit"))
