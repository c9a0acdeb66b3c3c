"""One teacher-forced trainer for the RNN seq2seq and the Transformer: batch orders, schedule, stops."""

from __future__ import annotations

import pytest
import torch

from helpers import seqdata
from helpers.models import attention as A
from helpers.models import transformer as T
from helpers.seqtrain import batch_indices, train_seq2seq


def _dates(n: int = 96):
    pairs = seqdata.date_pairs(n, seed=0)
    sv, tv = seqdata.Vocab.from_texts(s for s, _ in pairs), seqdata.Vocab("0123456789-")
    src, tgt = seqdata.encode_pairs(pairs, sv, tv)
    return src, tgt, sv, tv


def _rnn(sv, tv) -> A.Seq2Seq:
    torch.manual_seed(0)
    return A.Seq2Seq(len(sv), len(tv), embed=8, hidden=16, attention="bahdanau")


def _transformer(sv, tv, pad_id: int = 0) -> T.Transformer:
    torch.manual_seed(0)
    cfg = T.TransformerConfig(
        len(sv), len(tv), d_model=16, num_heads=2, d_ff=32, enc_layers=1, dec_layers=1, dropout=0.0, pad_id=pad_id
    )
    return T.Transformer(cfg)


def test_batch_orders():
    gen = torch.Generator().manual_seed(0)
    random = list(batch_indices(10, 4, gen, steps=5))
    assert len(random) == 5 and all(len(b) == 4 for b in random)
    epochs = list(batch_indices(10, 4, torch.Generator().manual_seed(0), epochs=2))
    assert [len(b) for b in epochs] == [4, 4, 2, 4, 4, 2], "the last batch of an epoch may be smaller"
    for epoch in (epochs[:3], epochs[3:]):
        assert sorted(torch.cat(epoch).tolist()) == list(range(10)), "each epoch visits every row once"
    assert torch.equal(torch.cat(epochs[:3]), torch.randperm(10, generator=torch.Generator().manual_seed(0)))
    capped = list(batch_indices(10, 4, torch.Generator().manual_seed(0), epochs=100, steps=4))
    assert len(capped) == 4 and all(torch.equal(a, b) for a, b in zip(capped, epochs))
    with pytest.raises(ValueError, match="steps"):
        list(batch_indices(10, 4, gen))


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
def test_trains_both_kinds_of_model_and_is_seeded(kind, one_thread):
    src, tgt, sv, tv = _dates()
    make = _rnn if kind == "rnn" else _transformer
    kwargs = dict(steps=15, batch_size=32, lr=1e-2) if kind == "rnn" else dict(epochs=5, batch_size=32, lr=3e-3)
    hist = train_seq2seq(make(sv, tv), src, tgt, **kwargs)
    assert list(hist) == ["step", "loss", "lr", "seconds"] and hist["step"] == list(range(1, len(hist["loss"]) + 1))
    assert len(hist["loss"]) == (15 if kind == "rnn" else 5 * 3)
    assert sum(hist["loss"][-3:]) < sum(hist["loss"][:3]), "the loss falls"
    again = train_seq2seq(make(sv, tv), src, tgt, **kwargs)
    assert again["loss"] == hist["loss"], "same seed, same numbers"
    other = train_seq2seq(make(sv, tv), src, tgt, seed=1, **kwargs)
    assert other["loss"] != hist["loss"], "the seed sets the batch order"


def test_schedule_clipping_and_stops(one_thread):
    src, tgt, sv, tv = _dates(64)
    warm = train_seq2seq(_transformer(sv, tv), src, tgt, steps=6, epochs=10, lr=1e-3, lr_lambda=lambda t: t / 4)
    assert warm["lr"] == pytest.approx([1e-3 * t / 4 for t in range(1, 7)])
    clipped = train_seq2seq(_transformer(sv, tv), src, tgt, steps=3, lr=1e-1, clip_norm=1e-6)
    free = train_seq2seq(_transformer(sv, tv), src, tgt, steps=3, lr=1e-1, clip_norm=None)
    assert clipped["loss"][0] == free["loss"][0] and clipped["loss"][1:] != free["loss"][1:]
    assert len(train_seq2seq(_rnn(sv, tv), src, tgt, steps=50, max_seconds=0.0)["loss"]) == 1
    with pytest.raises(ValueError, match="rows"):
        train_seq2seq(_rnn(sv, tv), src, tgt[:4], steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_seq2seq(_rnn(sv, tv), src, tgt)


def test_padding_is_the_models_own(one_thread):
    """The loss skips ``model.config.pad_id``: padding with another id gives the very same run."""
    v = seqdata.Vocab("abcdefghij")
    src, tgt = seqdata.encode_pairs(seqdata.reverse_pairs(32, seed=0), v, v)  # strings of 3 to 10 letters
    sv = tv = v
    unk = v.stoi[seqdata.UNK]
    assert not (src == unk).any() and not (tgt == unk).any() and (tgt == 0).any()
    as_zero = train_seq2seq(_transformer(sv, tv), src, tgt, steps=3, batch_size=16)
    as_unk = train_seq2seq(
        _transformer(sv, tv, pad_id=unk),
        src.masked_fill(src == 0, unk),
        tgt.masked_fill(tgt == 0, unk),
        steps=3,
        batch_size=16,
    )
    assert as_unk["loss"] == as_zero["loss"]
