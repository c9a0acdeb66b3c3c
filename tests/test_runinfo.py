"""The run-info block: what every chapter prints and every run record stores."""

from __future__ import annotations

from helpers import config, runinfo


def test_collect_has_what_a_result_needs(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path))
    info = runinfo.collect("smoke")
    assert info["profile"] == "smoke"
    assert info["hardware"]["device"] in {"cpu", "cuda", "mps"}
    assert info["hardware"]["cpu_cores"] >= 1
    assert info["versions"]["torch"] != "missing"
    assert info["versions"]["medvit-book"] != "missing", "the package must be installed"
    assert info["data_root"] == str(tmp_path)


def test_show_prints_profile_device_versions(capsys):
    runinfo.show(config.get_profile("smoke"))
    out = capsys.readouterr().out
    for word in ("profile     : smoke", "device", "versions", "torch", "data root"):
        assert word in out


def test_show_reports_data_sources(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVIT_DATA", str(tmp_path))
    info = runinfo.show("smoke", datasets=["pneumoniamnist"])
    assert "pneumoniamnist" in info["data_sources"]
    assert "pneumoniamnist" in capsys.readouterr().out


def test_page_tables_print_three_significant_digits():
    import pandas as pd

    from helpers.runinfo import page_number, page_tables

    assert [page_number(x) for x in (0.901354, 360.21393, 17092.0, 0.000123456, 12.5)] == [
        "0.901",
        "360",
        "17,092",
        "0.000123",
        "12.5",
    ]
    assert page_number(float("nan")) == "nan"
    before = pd.get_option("display.float_format")
    try:
        page_tables()
        assert "0.901" in pd.DataFrame({"accuracy": [0.901354]}).to_html()
    finally:
        pd.set_option("display.float_format", before)
