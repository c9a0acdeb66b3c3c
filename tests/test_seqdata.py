"""Toy sequence data: vocabulary round trips, generated tasks, and padding with BOS/EOS."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import torch

from helpers import seqdata
from helpers.seqdata import Vocab, date_pairs, encode_pairs, reverse_pairs


def test_vocab_specials_and_round_trip():
    v = Vocab("hello world")
    assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert len(v) == 4 + len(set("helo wrd"))
    ids = v.encode("hello")
    assert v.decode(ids) == "hello"
    # bos/pad skipped, decoding stops at eos
    assert v.decode([v.bos_id] + ids + [v.eos_id] + v.encode("xx") + [v.pad_id]) == "hello"
    assert v.encode("z") == [v.unk_id]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        v.encode("z", strict=True)
    with pytest.raises(IndexError):
        v.decode([999])
    with pytest.raises(TypeError):
        Vocab([1, 2])


def test_vocab_from_texts_is_sorted_and_deduplicated():
    v = Vocab.from_texts(["cab", "bad"])
    assert v.itos[4:] == ["a", "b", "c", "d"]
    assert v.decode(torch.tensor(v.encode("dab"))) == "dab"


def test_date_pairs_are_correct_and_seeded():
    pairs = date_pairs(500, seed=3)
    assert pairs == date_pairs(500, seed=3)
    assert pairs != date_pairs(500, seed=4)
    months = {m.lower(): i + 1 for i, m in enumerate(seqdata._MONTHS)}
    for src, iso in pairs:
        d = dt.date.fromisoformat(iso)
        assert 1950 <= d.year <= 2049
        # the source must contain the day and, for word forms, the month name
        nums = [int(x) for x in re.findall(r"\d+", src)]
        assert d.day in nums
        words = [w for w in re.findall(r"[a-zA-Z]+", src.lower()) if w[:3] in {m[:3] for m in months}]
        if words:
            assert any(months[m] == d.month for m in months if m.startswith(words[-1][:3]))
        else:
            assert d.month in nums
        assert d.year in nums or d.year % 100 in nums
    # several formats show up
    shapes = {re.sub(r"[0-9]", "9", re.sub(r"[A-Za-z]+", "w", s)) for s, _ in pairs}
    assert len(shapes) >= 5


def test_two_digit_years_are_unambiguous():
    for src, iso in date_pairs(2000, seed=0):
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d\d)", src)
        if m:
            yy = int(m.group(3))
            assert int(iso[:4]) == (1900 + yy if yy >= 50 else 2000 + yy)


def test_reverse_pairs():
    pairs = reverse_pairs(200, min_len=2, max_len=6, alphabet="xyz", seed=1)
    assert len(pairs) == 200
    for s, t in pairs:
        assert t == s[::-1] and 2 <= len(s) <= 6 and set(s) <= set("xyz")
    assert {len(s) for s, _ in pairs} == {2, 3, 4, 5, 6}
    with pytest.raises(ValueError):
        reverse_pairs(1, min_len=5, max_len=2)


def test_encode_pairs_layout():
    pairs = [("ab", "ba"), ("abc", "cba")]
    sv = Vocab("abc")
    tv = Vocab("abc")
    src, tgt = encode_pairs(pairs, sv, tv)
    assert src.dtype == torch.long and src.shape == (2, 4) and tgt.shape == (2, 5)
    assert src[0].tolist() == sv.encode("ab") + [sv.eos_id, sv.pad_id]
    assert tgt[1].tolist() == [tv.bos_id] + tv.encode("cba") + [tv.eos_id]
    assert tgt[0, -1].item() == tv.pad_id
    assert [tv.decode(r) for r in tgt] == ["ba", "cba"]
    src, tgt = encode_pairs(pairs, sv, tv, src_len=6, tgt_len=7)
    assert src.shape == (2, 6) and tgt.shape == (2, 7)
    with pytest.raises(ValueError, match="src_len"):
        encode_pairs(pairs, sv, tv, src_len=3)
    with pytest.raises(ValueError):
        encode_pairs([], sv, tv)


def test_adding_problem():
    x, y = seqdata.adding_problem(64, 30, seed=0)
    assert x.shape == (64, 30, 2) and y.shape == (64,)
    assert torch.all(x[..., 1].sum(1) == 2)
    assert torch.all(x[:, :15, 1].sum(1) == 1)
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(1), y)


def test_copy_problem():
    x, y = seqdata.copy_problem(10, n_symbols=4, seq_len=3, delay=5, seed=0)
    assert x.shape == y.shape == (10, 11)
    assert torch.equal(y[:, -3:], x[:, :3])
    assert torch.all(x[:, 7] == 5) and torch.all(y[:, :-3] == 0)
    assert x[:, :3].min() >= 1 and x[:, :3].max() <= 4


def test_lm_batches_shift_by_one():
    ids = list(range(100))
    x, y = seqdata.lm_batches(ids, 10, 4, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10)
    assert torch.equal(y, x + 1)
    with pytest.raises(ValueError):
        seqdata.lm_batches([1, 2], 5, 1)
    assert len(seqdata.CORPUS) > 1500


def test_sequence_accuracy():
    t = torch.tensor([[1, 2, 0], [3, 4, 5]])
    p = torch.tensor([[1, 2, 9], [3, 0, 5]])
    tok, exact = seqdata.sequence_accuracy(p, t)
    assert tok == pytest.approx(4 / 5) and exact == pytest.approx(0.5)


def test_date_fields_find_each_field_in_every_format():
    import calendar
    import datetime as dt

    for day in [dt.date(2021, 5, 3), dt.date(2020, 12, 20), dt.date(2003, 3, 3), dt.date(1999, 11, 11)]:
        iso = day.isoformat()
        for fmt, write in seqdata.DATE_FORMATS.items():
            text = write(day)
            spans = seqdata.date_fields(text, iso)
            got = {k: text[v[0] : v[-1] + 1] for k, v in spans.items()}
            assert got["year"] in (str(day.year), f"{day.year % 100:02d}"), (fmt, text, got)
            name = calendar.month_name[day.month].lower()
            month = got["month"].lower()
            assert month in (str(day.month), f"{day.month:02d}") or (len(month) >= 3 and name.startswith(month)), got
            assert got["day"].rstrip("stndrh") in (str(day.day), f"{day.day:02d}"), (fmt, text, got)
            assert not set(spans["year"]) & set(spans["day"]), (fmt, text)
    assert seqdata.date_fields("the 3rd of May 2021", "2021-05-03") == {
        "year": [15, 16, 17, 18],
        "month": [11, 12, 13],
        "day": [4, 5, 6],
    }
