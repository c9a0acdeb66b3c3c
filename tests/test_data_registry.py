"""load_dataset end to end: real samples, generated layouts with bad files, synthetic fallback, downloads."""

from __future__ import annotations

import io
import urllib.error
import warnings

import numpy as np
import pytest
from PIL import Image

from helpers import config
from helpers.data import describe_source, load_dataset, registry
from helpers.data import download as dl
from helpers.data.registry import BLOOD_CELLS, SyntheticDataWarning, choose
from helpers.data.specs import DATASETS
from helpers.data.synthetic import write_synthetic


@pytest.fixture(autouse=True)
def fresh_banners(monkeypatch):
    """Each test starts with no stand-in announced yet."""
    monkeypatch.setattr(registry, "_ANNOUNCED", set())


@pytest.fixture
def offline_fetch(monkeypatch):
    """Simulate a machine without internet: every network call fails as urllib does offline."""
    calls = []

    def no_network(url, dest, known_hash=None):
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(dl, "fetch", no_network)
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)
    return calls


# ----------------------------------------------------------------------------- real samples


def test_pbc_real_smoke_profile(real_data, tmp_workdirs, capsys):
    ds = load_dataset("pbc", "train", profile="smoke")
    out = capsys.readouterr().out
    assert ds.source == "real" and "source=real" in out and ".DS_169665.jpg" in out
    prof = config.get_profile("smoke")
    assert len(ds) == prof.max_train and ds.images.shape[1:] == (prof.image_size, prof.image_size, 3)
    assert set(ds.class_counts().values()) == {prof.max_train // 8}, "cap is stratified"
    assert ds.meta["split_rule"].startswith("stratified") and ds.patient_ids is None
    assert any(s["file"].endswith(".DS_169665.jpg") for s in ds.meta["skipped"])
    assert {a["subtype"] for a in ds.annotations} >= {"myelocyte", "band neutrophil"}
    # the three splits partition the 400 images (seeded, stratified)
    sizes = ds.meta["split_sizes"]
    assert sizes == {"train": 280, "valid": 40, "test": 80}
    again = load_dataset("pbc", "train", profile="smoke", verbose=False)
    assert again.ids == ds.ids and not again.meta["cache_built"]
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(ds.images))


def test_pbc_subtype_relabelling(real_data, tmp_workdirs):
    from helpers.data.pbc import PBC_SUBTYPES, by_subtype

    ds = load_dataset("pbc", "all", size=16, verbose=False)
    fine = by_subtype(ds)
    assert fine.name == "pbc_subtypes" and len(fine) == len(ds) and np.array_equal(fine.images, ds.images)
    assert set(fine.classes) <= {sub for _, sub in PBC_SUBTYPES.values()}
    assert len(fine.classes) > len(set(ds.labels.tolist())), "sub-types must split some of the 8 classes"
    # every sub-type belongs to exactly one of the eight classes
    parent = {sub: cls for cls, sub in PBC_SUBTYPES.values()}
    for y8, y_fine in zip(ds.labels, fine.labels):
        assert parent[fine.classes[y_fine]] == ds.classes[y8]
    with pytest.raises(ValueError, match="not in the class list"):
        by_subtype(ds, fine.classes[:1])
    with pytest.raises(ValueError, match="no per-image sub-types"):
        by_subtype(load_dataset("breastmnist", "test", verbose=False))


def test_nih_real_with_covid_and_equalisation(real_data, tmp_workdirs):
    ds = load_dataset("nih", "all", size=32, covid=True, preprocess="equalize", channels=3, verbose=False)
    assert ds.source == "real" and ds.task == "multilabel" and ds.classes[-1] == "COVID-19"
    assert ds.labels.shape == (60, 15) and ds.images.shape == (60, 32, 32, 3)
    assert np.array_equal(ds.images[..., 0], ds.images[..., 2]), "grey repeated to three identical channels"
    assert set(ds.meta["origin"]) == {"nih", "covid"}


def test_medmnist_real_profile_and_size(real_data, tmp_workdirs):
    ds = load_dataset("breastmnist", "train", profile="smoke", verbose=False)
    assert ds.source == "real" and len(ds) == 64 and ds.images.shape[1:] == (32, 32, 1)
    full = load_dataset("breastmnist", "test", verbose=False)
    assert len(full) == 156 and full.image_size == 28


def test_describe_source_real(real_data):
    assert describe_source("pbc").startswith("real (")
    assert describe_source("pneumoniamnist").startswith("real (")
    assert describe_source("cbis_ddsm").startswith("synthetic stand-in")


# ----------------------------------------------------------------------------- generated layouts


def test_generated_pbc_layout_with_bad_files(tmp_path, tmp_workdirs, monkeypatch):
    data = tmp_path / "data"
    root = write_synthetic("pbc", data / "pbc", per_class=6, size=48)
    cls = root / "PBC_dataset_normal_DIB"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    (cls / "basophil" / "BA_truncated.jpg").write_bytes(buf.getvalue()[:600])
    (cls / "eosinophil" / "EO_empty.jpg").write_bytes(b"")
    Image.fromarray(np.full((48, 48, 4), 90, np.uint8), "RGBA").save(cls / "monocyte" / "MO_rgba.png")
    Image.fromarray((np.arange(48 * 48).reshape(48, 48) * 20).astype(np.uint16)).save(
        cls / "platelet" / "PLATELET_16.png"
    )
    monkeypatch.setenv("MEDVIT_DATA", str(data))
    ds = load_dataset("pbc", "all", size=24, verbose=False)
    assert ds.source == "real" and len(ds) == 48 + 2  # two bad files skipped, two converted
    reasons = [s["reason"] for s in ds.meta["skipped"]]
    assert sum("truncated" in r or "decoded" in r for r in reasons) == 1 and sum("empty" in r for r in reasons) == 1
    assert ds.meta["decode_report"]["skipped"] and ds.meta["decode_report"]["kept"] == 50
    assert len(ds.labels) == len(ds.ids) == len(ds.annotations) == 50
    assert "BA_truncated.jpg" not in ds.ids and "MO_rgba.png" in ds.ids


def test_generated_nih_official_split(tmp_path, tmp_workdirs, monkeypatch):
    data = tmp_path / "data"
    write_synthetic("nih", data / "nih", patients=25, size=32)
    monkeypatch.setenv("MEDVIT_DATA", str(data))
    parts = {s: load_dataset("nih", s, size=16, verbose=False) for s in ("train", "valid", "test")}
    test_names = set((data / "nih" / "test_list.txt").read_text().split())
    assert set(parts["test"].ids) == test_names
    assert parts["train"].meta["split_rule"].startswith("official")
    pats = [set(p.patient_ids) for p in parts.values()]
    assert not (pats[0] & pats[1]) and not (pats[0] & pats[2]) and not (pats[1] & pats[2])


def test_generated_cbis_layout(tmp_path, tmp_workdirs, monkeypatch):
    data = tmp_path / "data"
    write_synthetic("cbis_ddsm", data / "cbis_ddsm", cases=30, size=32)
    monkeypatch.setenv("MEDVIT_DATA", str(data))
    test = load_dataset("cbis_ddsm", "test", size=16, verbose=False)
    train = load_dataset("cbis_ddsm", "train", size=16, verbose=False)
    assert test.source == "real" and test.task == "binary" and len(test) == 6
    assert not set(test.patient_ids) & set(train.patient_ids)


# ----------------------------------------------------------------------------- fallbacks and downloads


def test_synthetic_fallback_is_loud_once(tmp_path, tmp_workdirs, monkeypatch, capsys):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticDataWarning)  # verbose: the printed banner, not a second one
        ds = load_dataset("pbc", "train", profile="smoke")
        load_dataset("pbc", "test", profile="smoke")
    out = capsys.readouterr().out
    assert ds.source == "synthetic" and out.count("SYNTHETIC STAND-IN for 'pbc'") == 1 and "mendeley" in out.lower()
    assert ds.summary()["source"] == "synthetic"
    assert describe_source("pbc").startswith("synthetic stand-in")
    with pytest.warns(SyntheticDataWarning):
        mm = load_dataset("pneumoniamnist", "valid", verbose=False)
    assert mm.source == "synthetic" and mm.task == "binary"
    assert describe_source("mias").startswith("synthetic stand-in")


def test_offline_download_message_mias(tmp_path, tmp_workdirs, offline_fetch):
    with pytest.raises(dl.DownloadError) as err:
        dl.download_mias(tmp_path / "mias")
    msg = str(err.value)
    assert offline_fetch == [dl.MIAS_URL]
    assert "could not download" in msg and "peipa.essex.ac.uk" in msg
    assert "$MEDVIT_DATA/mias/all-mias/Info.txt" in msg, "says where to put it"


def test_offline_download_message_medmnist(tmp_path, tmp_workdirs, offline_fetch):
    with pytest.raises(dl.DownloadError, match=r"zenodo.*\$MEDVIT_DATA/medmnist/"):
        dl.download_medmnist("bloodmnist", tmp_path)


def test_registry_tries_download_then_falls_back(tmp_path, tmp_workdirs, monkeypatch, offline_fetch):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "empty"))
    assert describe_source("mias").startswith("download from http://peipa")
    with pytest.warns(SyntheticDataWarning):
        ds = load_dataset("mias", "train", size=16, verbose=False)
    assert offline_fetch == [dl.MIAS_URL]
    assert ds.source == "synthetic" and "download failed" in ds.meta["origin"]["mias"]["why"]


def test_registry_uses_a_download(tmp_path, tmp_workdirs, monkeypatch):
    """A successful (simulated) MedMNIST download is read with source='download'."""
    src = write_synthetic("pneumoniamnist", tmp_path / "zenodo", flag="pneumoniamnist")

    def fake_download(dest, size=None):
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "pneumoniamnist.npz"
        target.write_bytes((src / "pneumoniamnist.npz").read_bytes())
        return target

    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)
    monkeypatch.setitem(DATASETS, "pneumoniamnist", DATASETS["pneumoniamnist"].replace(downloader=fake_download))
    ds = load_dataset("pneumoniamnist", "test", verbose=False)
    assert ds.source == "download"
    assert describe_source("pneumoniamnist").startswith("download (fetched earlier")


def test_unknown_names_and_splits():
    with pytest.raises(KeyError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_dataset("pbc", "training")


@pytest.mark.parametrize(
    "name, where",
    [
        ("pbc", "$MEDVIT_DATA/pbc/PBC_dataset_normal_DIB"),
        ("nih", "$MEDVIT_DATA/nih/"),
        ("cbis_ddsm", "$MEDVIT_DATA/cbis_ddsm/csv/dicom_info.csv"),
    ],
)
def test_manual_datasets_explain_where_to_get_them(name, where):
    with pytest.raises(dl.DownloadError) as err:
        dl.download(name)
    assert where in str(err.value) and "http" in str(err.value)


def test_medmnist_channel_conversion(tmp_path, tmp_workdirs, monkeypatch):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "data"))
    write_synthetic("bloodmnist", tmp_path / "data" / "medmnist", flag="bloodmnist", counts=(8, 4, 4))
    rgb = load_dataset("bloodmnist", "test", verbose=False)
    grey = load_dataset("bloodmnist", "test", channels=1, verbose=False)
    assert rgb.source == "real" and rgb.channels == 3 and grey.channels == 1
    expected = np.asarray([np.asarray(Image.fromarray(i).convert("L")) for i in rgb.images])
    np.testing.assert_array_equal(grey.images[..., 0], expected)


def test_cli_data_describe_and_download(real_data, capsys, offline_fetch):
    from helpers.__main__ import main

    assert main(["data", "describe", "pbc", "cbis_ddsm"]) == 0
    out = capsys.readouterr().out
    assert "pbc             real (" in out and "cbis_ddsm       synthetic stand-in" in out
    assert main(["data", "download", "nih"]) == 1
    assert "$MEDVIT_DATA/nih/" in capsys.readouterr().out


def test_blood_cells_choose_pbc_then_bloodmnist(real_data, tmp_path, tmp_workdirs, monkeypatch):
    assert choose(BLOOD_CELLS, download=False)[:2] == ("pbc", "real")
    data = tmp_path / "data"
    write_synthetic("bloodmnist", data / "medmnist", flag="bloodmnist", counts=(8, 4, 4))
    monkeypatch.setenv("MEDVIT_DATA", str(data))
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    name, source, why = choose(BLOOD_CELLS, size=64)
    assert (name, source) == ("bloodmnist", "real") and "PBC images re-cut" in why and "pbc not present" in why
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "empty"))
    assert choose(BLOOD_CELLS)[:2] == ("pbc", "synthetic"), "offline with nothing: the first one's stand-in"


def test_medmnist_download_at_the_profile_side(tmp_path, tmp_workdirs, monkeypatch):
    """A download is made at the side the profile needs; offline, an earlier one at another side is used."""
    src = write_synthetic("breastmnist", tmp_path / "zenodo", flag="breastmnist") / "breastmnist.npz"
    asked = []

    def fake_download(dest, size=None):
        asked.append(size)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "breastmnist_64.npz"
        target.write_bytes(src.read_bytes())
        return target

    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)
    monkeypatch.setitem(DATASETS, "breastmnist", DATASETS["breastmnist"].replace(downloader=fake_download))
    assert registry.resolve("breastmnist", size=64, verbose=False)[:1] == ("download",) and asked == [64]
    assert registry.resolve("breastmnist", size=64, verbose=False)[1].name == "breastmnist_64.npz" and asked == [64]
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    source, path, why = registry.resolve("breastmnist", size=224, verbose=False)
    assert source == "download" and path.name == "breastmnist_64.npz" and "another side" in why


def test_medmnist_file_picks_the_side(tmp_path):
    from helpers.data.medmnist import medmnist_file

    for name in ("bloodmnist.npz", "bloodmnist_64.npz", "bloodmnist_224.npz"):
        (tmp_path / name).write_bytes(b"")
    pick = {s: medmnist_file(tmp_path, "bloodmnist", s).name for s in (None, 28, 32, 64, 100, 512)}
    assert pick == {
        None: "bloodmnist.npz",
        28: "bloodmnist.npz",
        32: "bloodmnist_64.npz",
        64: "bloodmnist_64.npz",
        100: "bloodmnist_224.npz",
        512: "bloodmnist_224.npz",
    }
    assert medmnist_file(tmp_path, "bloodmnist", 100, exact=True) is None
    assert medmnist_file(tmp_path, "pathmnist") is None


def test_covid_not_downloaded_for_a_synthetic_nih(tmp_path, tmp_workdirs, monkeypatch, offline_fetch):
    from helpers.data.registry import load_catalog

    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "empty"))
    _, source, origin = load_catalog("nih", covid=True, verbose=False)
    assert source == "synthetic" and offline_fetch == [], "no COVID-19 download to pair with a stand-in"
    assert origin["covid"]["source"] == "synthetic"
