"""The pose chapter's choice of subjects and motions, on generated CMU roots (file names only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.pose.mocap import available_motions, choose_motions, motion_paths

REQUESTED = dict(subject="02", train=[1, 3, 5, 6, 7, 9, 10], test=[2, 4, 8], unseen="01", unseen_motions=[1, 2, 3, 4])


def _root(tmp_path: Path, subjects: dict[str, list[int]]) -> Path:
    """A CMU root in the database's layout: ``subjects/<s>/<s>.asf`` and ``<s>_<nn>.amc`` (empty files)."""
    for subject, motions in subjects.items():
        folder = tmp_path / "cmu_mocap" / "subjects" / subject
        folder.mkdir(parents=True)
        (folder / f"{subject}.asf").touch()
        for m in motions:
            (folder / f"{subject}_{m:02d}.amc").touch()
    return tmp_path / "cmu_mocap"


def test_the_requested_motions_are_kept_where_the_root_has_them(tmp_path: Path) -> None:
    root = _root(tmp_path, {"01": [1, 2, 3, 4], "02": list(range(1, 11))})
    choice = choose_motions(root, **REQUESTED)
    assert (choice.subject, choice.train, choice.test) == ("02", (1, 3, 5, 6, 7, 9, 10), (2, 4, 8))
    assert (choice.unseen, choice.unseen_motions, choice.notes) == ("01", (1, 2, 3, 4), ())


def test_a_root_without_subject_02_gets_a_subject_it_has(tmp_path: Path) -> None:
    root = _root(tmp_path, {"01": list(range(5, 15)), "03": [1, 2, 3, 4]})
    (root / "subjects" / "05").mkdir()  # a subject folder with no skeleton is not a subject
    (root / "subjects" / "05" / "05_01.amc").touch()
    assert available_motions(root) == {"01": list(range(5, 15)), "03": [1, 2, 3, 4]}
    choice = choose_motions(root, **REQUESTED)
    assert choice.subject == "01" and choice.unseen == "03"
    assert choice.test == (6, 9, 12) and choice.train == (5, 7, 8, 10, 11, 13, 14)
    assert not set(choice.train) & set(choice.test)
    assert choice.unseen_motions == (1, 2, 3, 4)
    assert "subject 02" in choice.describe() and "picked 01" in choice.describe() and "picked 03" in choice.describe()
    for subject, motions in [(choice.subject, choice.train + choice.test), (choice.unseen, choice.unseen_motions)]:
        assert all(a.is_file() for _, a in motion_paths(root, subject, motions))  # every pick exists


def test_a_small_subject_still_holds_out_a_motion(tmp_path: Path) -> None:
    root = _root(tmp_path, {"07": [1, 2], "08": [3]})
    choice = choose_motions(root, **REQUESTED)
    assert (choice.subject, choice.train, choice.test) == ("07", (1,), (2,))
    assert (choice.unseen, choice.unseen_motions) == ("08", (3,))


def test_missing_motions_of_the_unseen_subject_are_replaced(tmp_path: Path) -> None:
    root = _root(tmp_path, {"01": [5, 6], "02": list(range(1, 11))})
    choice = choose_motions(root, **REQUESTED)
    assert choice.subject == "02" and choice.unseen == "01" and choice.unseen_motions == (5, 6)
    assert "took [5, 6]" in choice.describe()


def test_a_root_with_one_subject_trains_on_it_and_has_no_unseen_subject(tmp_path: Path) -> None:
    root = _root(tmp_path, {"01": list(range(5, 15))})
    choice = choose_motions(root, **REQUESTED)
    assert (choice.subject, choice.train, choice.test) == ("01", (5, 7, 8, 10, 11, 13, 14), (6, 9, 12))
    assert (choice.unseen, choice.unseen_motions) == (None, ())
    assert "no unseen subject" in choice.describe() and "holds one subject (01)" in choice.describe()


def test_a_root_without_subjects_says_what_the_layout_is(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no subject.*subjects/<nn>/<nn>.asf"):
        choose_motions(tmp_path / "nowhere", **REQUESTED)
    root = _root(tmp_path, {"02": [1]})
    with pytest.raises(FileNotFoundError, match="no subject with two motions"):
        choose_motions(root, **REQUESTED)


def test_the_shared_sample_keeps_the_chapters_defaults(real_data: Path) -> None:
    choice = choose_motions(real_data / "cmu_mocap", **REQUESTED)
    assert choice.notes == () and choice.subject == "02" and choice.unseen == "01"
