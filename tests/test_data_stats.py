"""helpers.data.stats: prevalence, co-occurrence, image sizes and sample grids."""

from __future__ import annotations

import numpy as np

from helpers.data import stats
from helpers.data.pbc import read_pbc
from helpers.data.synthetic import write_synthetic


def test_prevalence_and_cooccurrence():
    y = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=np.float32)
    assert stats.prevalence(y, ["a", "b", "c"]) == {"a": 3, "b": 1, "c": 2, "No Finding": 1}
    c = stats.cooccurrence(y)
    assert c.tolist() == [[3, 1, 2], [1, 1, 0], [2, 0, 2]]


def test_image_sizes_and_grid(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    root = write_synthetic("pbc", tmp_path / "pbc", per_class=2, size=40)
    cat = read_pbc(root)
    (root / "PBC_dataset_normal_DIB" / "platelet" / "PLATELET_bad.jpg").write_bytes(b"garbage")
    sizes = stats.image_size_stats(
        list(cat.files) + [root / "PBC_dataset_normal_DIB" / "platelet" / "PLATELET_bad.jpg"]
    )
    assert sizes["n"] == 16 and sizes["unreadable"] == 1 and sizes["sizes"] == {(40, 40): 16}
    picks = stats.pick_per_class(cat, 1, seed=0)
    assert sorted(cat.labels[picks].tolist()) == list(range(8))
    fig = stats.plot_sample_grid(cat, 2, 16, "grid")
    assert len([a for a in fig.axes if a.images]) == 16


def test_thesis_tables_are_the_printed_numbers():
    assert stats.THESIS000_TABLE_4_1["Hernia"] == (4470, 86)
    assert sum(v[0] for v in stats.THESIS000_TABLE_4_1.values()) == 157418
    assert stats.THESIS002_CBIS_COUNTS["mass"][4] == 1318 + 378
