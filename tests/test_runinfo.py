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
