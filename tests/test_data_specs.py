"""Datasets as specs: one registry of names, one resolution walk, and a describe that writes nothing."""

from __future__ import annotations

import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.cards import TASK_KINDS
from helpers.data import describe_source, load_dataset
from helpers.data import download as dl
from helpers.data.registry import resolve
from helpers.data.specs import DATASETS, FOLDER_DATASETS, get_spec
from helpers.preprocessing import prepare_file

ROOT = Path(__file__).resolve().parents[1]
FILMS = 12  # mini-MIAS films the fake download copies from the real sample


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and modification time (empty when absent)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture
def no_network(monkeypatch):
    """Every network call fails as urllib does offline (and ``MEDVIT_OFFLINE`` is unset)."""
    calls = []

    def fail(url, dest, timeout=30.0):
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(dl, "fetch", fail)
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)
    return calls


@pytest.fixture
def fake_mias_download(real_data, monkeypatch):
    """mini-MIAS's downloader swapped for one that copies the first films of the real sample (calls counted)."""
    calls = []

    def copy_sample(dest: Path) -> Path:
        calls.append(dest)
        src, out = real_data / "mias" / "all-mias", dest / "all-mias"
        out.mkdir(parents=True, exist_ok=True)
        for f in ["Info.txt", *(p.name for p in sorted(src.glob("mdb*.pgm"))[:FILMS])]:
            shutil.copy(src / f, out / f)
        return dest

    monkeypatch.setitem(DATASETS, "mias", DATASETS["mias"].replace(downloader=copy_sample))
    return calls


def test_every_name_has_one_complete_spec():
    bib = (ROOT / "book" / "references.bib").read_text()
    assert list(FOLDER_DATASETS) == ["pbc", "nih", "nih_64px", "covid", "mias", "cbis_ddsm"]
    assert {"pneumoniamnist", "breastmnist", "bloodmnist", "chestmnist"} <= set(DATASETS)
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.task in TASK_KINDS, name
        assert f"{{{spec.citation}," in bib, f"{name}: citation key {spec.citation!r} is not in references.bib"
        assert spec.licence and spec.url.startswith("http") and "$MEDVIT_DATA" in spec.layout, name
        assert spec.home == ("medmnist" if spec.kind == "medmnist" else spec.folder or name)
    assert [n for n, s in FOLDER_DATASETS.items() if s.auto] == ["covid", "mias"]
    assert {s.home for n, s in DATASETS.items() if n.startswith("mias_")} == {"mias"}
    assert (DATASETS["pneumoniamnist"].task, DATASETS["chestmnist"].task) == ("binary", "multilabel")
    assert DATASETS["cbis_ddsm"].reader_options == ("label",)
    with pytest.raises(KeyError, match="unknown dataset 'imagenet'"):
        get_spec("imagenet")
    with pytest.raises(ValueError, match="marker"):
        DATASETS["pbc"].replace(downloader=lambda dest: dest)
    with pytest.raises(ValueError, match="task"):
        DATASETS["pbc"].replace(task="regression")


def test_resolve_walks_one_order(real_data, tmp_workdirs, monkeypatch, fake_mias_download):
    calls = fake_mias_download
    prior = dl.download_dir("mias")
    monkeypatch.delenv("MEDVIT_OFFLINE", raising=False)
    # 1. the real copy under $MEDVIT_DATA comes first
    assert resolve("mias", verbose=False)[:2] == ("real", real_data / "mias")
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_workdirs / "empty"))
    # 4. nothing on disk and no download allowed (offline, or download=False): the stand-in, no attempt
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    source, path, why = resolve("mias", verbose=False)
    assert source == "synthetic" and (path / "all-mias" / "Info.txt").exists() and "MEDVIT_OFFLINE" in why
    monkeypatch.delenv("MEDVIT_OFFLINE")
    assert resolve("mias", download=False, verbose=False)[0] == "synthetic" and calls == []
    # an unfinished download (no marker) is not trusted
    (prior / "all-mias").mkdir(parents=True)
    assert resolve("mias", download=False, verbose=False)[0] == "synthetic"
    # 3. online: one download into the downloads folder ...
    assert resolve("mias", verbose=False)[:2] == ("download", prior) and calls == [prior]
    # 2. ... found there from then on, without another download, even offline
    monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    assert resolve("mias", verbose=False)[:2] == ("download", prior) and len(calls) == 1
    ds = load_dataset("mias", "all", size=16, verbose=False)
    assert ds.source == "download" and len(ds) == FILMS and ds.meta["origin"]["mias"]["path"] == str(prior)
    # and a real copy still wins over the download
    monkeypatch.setenv("MEDVIT_DATA", str(real_data))
    assert resolve("mias", verbose=False)[0] == "real"


def test_resolve_prefers_a_medmnist_plus_file_of_the_size_asked(tmp_path, tmp_workdirs, monkeypatch, real_data):
    home = tmp_path / "data" / "medmnist"
    home.mkdir(parents=True)
    shutil.copy(real_data / "medmnist" / "breastmnist.npz", home / "breastmnist.npz")
    shutil.copy(real_data / "medmnist" / "breastmnist.npz", home / "breastmnist_64.npz")
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "data"))
    assert resolve("breastmnist", size=64, verbose=False)[1] == home / "breastmnist_64.npz"
    assert resolve("breastmnist", size=32, verbose=False)[1] == home / "breastmnist_64.npz", "down, not up"
    assert resolve("breastmnist", size=28, verbose=False)[1] == home / "breastmnist.npz"
    assert resolve("breastmnist", verbose=False)[1] == home / "breastmnist.npz"


@pytest.mark.parametrize("offline", [False, True])
def test_describe_source_writes_nothing(real_data, tmp_path, monkeypatch, no_network, offline):
    cache, empty = tmp_path / "cache", tmp_path / "empty"
    monkeypatch.setenv("MEDVIT_CACHE", str(cache))
    if offline:
        monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    data_before = _tree(real_data)
    for root in (real_data, empty):
        monkeypatch.setenv("MEDVIT_DATA", str(root))
        said = {name: describe_source(name) for name in [*DATASETS, "nih+covid"]}
        assert all(text.split(" ")[0] in ("real", "download", "synthetic") for text in said.values()), said
    assert not cache.exists() and not empty.exists(), "describe_source created a folder"
    assert _tree(real_data) == data_before and no_network == []
    # with an earlier download in the cache, the cache is read, not touched
    write = dl.download_dir("mias") / "all-mias"
    write.mkdir(parents=True)
    shutil.copy(real_data / "mias" / "all-mias" / "Info.txt", write / "Info.txt")
    cache_before = _tree(cache)
    assert describe_source("mias") == "download (fetched earlier: $MEDVIT_CACHE/downloads/mias)"
    assert _tree(cache) == cache_before


@pytest.mark.parametrize("offline", [False, True])
def test_describe_source_says_what_resolve_does(real_data, tmp_path, tmp_workdirs, monkeypatch, no_network, offline):
    """The query and the walk agree for every kind of dataset, with and without the data."""
    if offline:
        monkeypatch.setenv("MEDVIT_OFFLINE", "1")
    names = [*FOLDER_DATASETS, "breastmnist", "pneumoniamnist"]
    for root in (real_data, tmp_path / "empty"):
        monkeypatch.setenv("MEDVIT_DATA", str(root))
        for name in names:
            said = describe_source(name)
            source, _, why = resolve(name, verbose=False)
            if said.startswith("download from"):  # a download is tried (it fails here), then the stand-in
                assert source == "synthetic" and "download failed" in why, (name, said, why)
            else:
                assert said.split(" ")[0] == source, (name, said, source)
    # online, the empty root sends covid, mias and the two MedMNIST flags to the network once each
    assert len(no_network) == (0 if offline else 4), no_network


def test_medmnist_honours_preprocess(real_data, tmp_workdirs, tmp_path):
    """MedMNIST arrays get the rule files get: an equalised image equals the cache's for the same image as a file."""
    plain = load_dataset("breastmnist", "test", verbose=False)
    equalised = load_dataset("breastmnist", "test", preprocess="equalize", verbose=False)
    rgb = load_dataset("breastmnist", "test", size=48, channels=3, preprocess="equalize", verbose=False)
    assert (plain.meta["preprocess"], equalised.meta["preprocess"]) == (None, "equalize")
    assert equalised.images.shape == plain.images.shape and not np.array_equal(equalised.images, plain.images)
    assert rgb.images.shape[1:] == (48, 48, 3) and np.array_equal(rgb.images[..., 0], rgb.images[..., 2])
    for i in (0, 37, 155):
        path = tmp_path / f"{i}.png"
        Image.fromarray(plain.images[i][..., 0]).save(path)
        np.testing.assert_array_equal(equalised.images[i], prepare_file(path, 28, 1, "equalize")[0])
        np.testing.assert_array_equal(rgb.images[i], prepare_file(path, 48, 3, "equalize")[0])
        # equalising spreads the grey levels over the whole range
        assert equalised.images[i].min() == 0 and equalised.images[i].max() >= 250 > plain.images[i].max()
    with pytest.raises(ValueError, match="preprocess"):
        load_dataset("breastmnist", "test", preprocess="clahe", verbose=False)


def test_medmnist_rgb_equalised_as_a_colour_file(tmp_path, tmp_workdirs, monkeypatch):
    """A colour MedMNIST image is equalised in grey, as the cache equalises a colour file."""
    from helpers.data.synthetic import write_synthetic

    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path / "data"))
    write_synthetic("bloodmnist", tmp_path / "data" / "medmnist", flag="bloodmnist", counts=(8, 4, 4))
    rgb = load_dataset("bloodmnist", "test", verbose=False)
    eq = load_dataset("bloodmnist", "test", size=40, preprocess="equalize", verbose=False)
    assert rgb.source == "real" and eq.images.shape[1:] == (40, 40, 3)
    for i in range(len(rgb)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rgb.images[i]).save(path)
        np.testing.assert_array_equal(eq.images[i], prepare_file(path, 40, 3, "equalize")[0])
