"""Toy sequence data for the theory chapters: vocabularies, a small corpus and generated tasks.

Everything here is generated from a seed (nothing is downloaded), so every chapter gets the same
data on every machine:

* :class:`Vocab` maps tokens (characters by default) to ids, with ``<pad>``, ``<bos>``, ``<eos>``
  and ``<unk>`` first (``<pad>`` is id 0).
* :data:`CORPUS` is a few paragraphs of plain English for the character-level language model,
  and :func:`lm_batches` cuts it into (input, next-character) batches.
* :func:`adding_problem` and :func:`copy_problem` are the two classic long-memory tasks
  (Hochreiter & Schmidhuber 1997).
* :func:`date_pairs` (human-written dates -> ISO ``YYYY-MM-DD``) and :func:`reverse_pairs`
  (string -> reversed string) are small translation tasks; :func:`encode_pairs` turns a list of
  pairs into padded id tensors for an encoder-decoder.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from collections.abc import Callable, Iterable, Sequence

import torch

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "Vocab",
    "CORPUS",
    "lm_batches",
    "adding_problem",
    "copy_problem",
    "DATE_FORMATS",
    "date_pairs",
    "date_fields",
    "ISO_FIELDS",
    "reverse_pairs",
    "encode_pairs",
    "sequence_accuracy",
]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)


class Vocab:
    """A bidirectional map between tokens and integer ids.

    The special tokens come first, so ``pad_id == 0``, ``bos_id == 1``, ``eos_id == 2`` and
    ``unk_id == 3``; the other tokens follow in the order given (duplicates dropped). A string
    passed to :meth:`encode` is split into characters, so a character vocabulary needs no
    tokenizer.

    Example:
        >>> v = Vocab("abc")
        >>> v.encode("cab")
        [6, 4, 5]
        >>> v.decode([1, 6, 4, 5, 2, 0])
        'cab'
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self.itos: list[str] = list(SPECIALS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for tok in tokens:
            if not isinstance(tok, str):
                raise TypeError(f"tokens must be strings, got {type(tok).__name__}: {tok!r}")
            if tok not in self.stoi:
                self.stoi[tok] = len(self.itos)
                self.itos.append(tok)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocab:
        """A character vocabulary holding every character of ``texts``, sorted."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return cls(sorted(chars))

    pad_id = property(lambda self: self.stoi[PAD], doc="id of ``<pad>`` (0)")
    bos_id = property(lambda self: self.stoi[BOS], doc="id of ``<bos>`` (1)")
    eos_id = property(lambda self: self.stoi[EOS], doc="id of ``<eos>`` (2)")
    unk_id = property(lambda self: self.stoi[UNK], doc="id of ``<unk>`` (3)")

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        shown = "".join(self.itos[len(SPECIALS) :][:40])
        return f"Vocab(size={len(self)}, tokens={shown!r})"

    def encode(self, tokens: str | Sequence[str], strict: bool = False) -> list[int]:
        """Ids of ``tokens`` (a string is read character by character).

        Unknown tokens map to ``<unk>``; with ``strict=True`` they raise ``KeyError`` instead.
        """
        out = []
        for tok in tokens:
            idx = self.stoi.get(tok)
            if idx is None:
                if strict:
                    raise KeyError(f"token {tok!r} is not in the vocabulary ({self!r})")
                idx = self.unk_id
            out.append(idx)
        return out

    def decode(self, ids: Iterable[int] | torch.Tensor, join: str = "", stop_at_eos: bool = True) -> str:
        """The text for ``ids``: ``<bos>`` and ``<pad>`` are skipped, and decoding stops at ``<eos>``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"id {i} is outside the vocabulary (size {len(self)})")
            if i == self.eos_id and stop_at_eos:
                break
            if i in (self.pad_id, self.bos_id, self.eos_id):
                continue
            out.append(self.itos[i])
        return join.join(out)


# ----------------------------------------------------------------------------- corpus

CORPUS = """\
A recurrent network reads a sequence one step at a time and carries a hidden state from each step \
to the next. The state is a summary of everything the network has seen so far, and the same weights \
are used at every step, so a short program can read a sequence of any length.

When the network is trained, the error at the last step must travel back through every earlier \
step. Each step multiplies the error by the same recurrent matrix, and so the error either fades \
away or grows without bound, depending on how large that matrix is. Gates were invented to give the \
error a path on which it is neither shrunk nor stretched.

The long short-term memory cell keeps a separate memory line. A forget gate decides how much of the \
old memory to keep, an input gate decides how much new content to write, and an output gate decides \
how much of the memory to show. The gated recurrent unit does the same work with two gates: one that \
resets the past when a new candidate is formed, and one that mixes the old state with the candidate.

An encoder reads a sentence and a decoder writes its translation. With attention, the decoder does \
not rely on one fixed summary of the sentence: at every step it scores each encoder state against \
its own state, turns the scores into weights that sum to one, and reads a weighted average of the \
encoder states. The weights show where the decoder looked, word by word.

The transformer keeps attention and drops the recurrence. Every position looks at every other \
position at once, so the whole sentence is processed in parallel, and the order of the words is \
added to the inputs as a pattern of sines and cosines.

In medicine the same ideas read images. A picture of a blood smear, a chest radiograph or a \
mammogram is cut into small patches, each patch becomes a token, and the network learns which \
patches to attend to before it names a finding. A doctor can then look at the attention maps and \
ask whether the model looked at the right place.

A blood smear is a thin film of blood spread on a glass slide and stained, so that the cells take on \
colours a microscope can tell apart. Red cells are small, round and pale in the middle. White cells \
are larger and fewer, and their nuclei have shapes that name them: the neutrophil has a nucleus in \
several lobes, the lymphocyte a round nucleus that fills most of the cell, the monocyte a folded one, \
and the eosinophil is full of bright orange grains. Platelets are tiny fragments with no nucleus at \
all. Counting each kind by eye is slow work, and a network that sorts the cells can save the \
specialist many hours.

A chest radiograph is a shadow picture. The x-rays pass through the body and are stopped more by bone \
than by soft tissue, and more by soft tissue than by air, so the lungs look dark, the ribs and the \
spine look white, and the heart is a grey shape between the lungs. A pneumonia shows as a white patch \
where there should be dark lung; fluid around the lung blunts the sharp angle at its base; an enlarged \
heart takes up more than half of the width of the chest. One image may show several findings at once, \
so a model must give a separate answer for each of them.

A mammogram is an x-ray of the breast taken from two directions. A radiologist looks for masses, for \
small bright specks of calcium, and for places where the two breasts differ. Most of what is found is \
benign, and the hard part is to say which small change is not. The images are large and the lesions \
are small, so a model is usually shown a crop around each lesion rather than the whole picture.

To train a network is to change its weights a little at a time so that its answers on the training \
examples get better. The loss measures how wrong the answers are, the gradient says in which direction \
each weight should move to lower it, and the learning rate says how far to move. If the steps are too \
large the loss jumps about; if they are too small, training takes forever. A model that does well on \
the examples it was trained on but badly on new ones has memorised rather than learned, and the only \
honest test is on data it has never seen.

A small model trained for a few seconds shows that the code runs. A larger model trained for hours on \
the full data shows whether the idea works. Both have their place, and each number in this book says \
which of the two produced it, on which machine, and how long it took.
"""


def lm_batches(
    ids: Sequence[int] | torch.Tensor, seq_len: int, batch_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of language-model windows: inputs ``(B, T)`` and next-token targets ``(B, T)``.

    Raises:
        ValueError: when the text is shorter than ``seq_len + 1`` tokens.
    """
    data = torch.as_tensor(ids, dtype=torch.long)
    if data.numel() < seq_len + 1:
        raise ValueError(f"text has {data.numel()} tokens; need at least seq_len + 1 = {seq_len + 1}")
    starts = torch.randint(0, data.numel() - seq_len, (batch_size,), generator=generator)
    offsets = torch.arange(seq_len)
    x = data[starts[:, None] + offsets]
    y = data[starts[:, None] + offsets + 1]
    return x, y


# ----------------------------------------------------------------------------- memory tasks


def adding_problem(n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: ``x`` is ``(n, length, 2)``, ``y`` is ``(n,)``.

    Channel 0 holds uniform random numbers in [0, 1); channel 1 marks exactly two positions with
    a 1, one in the first half and one in the second. The target is the sum of the two marked
    numbers. Predicting the constant 1.0 gives a mean squared error of about 1/6 ~ 0.167; a model
    that remembers the first marked number across the sequence does far better.
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, length, generator=g)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, length, (n,), generator=g)
    marks = torch.zeros(n, length)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = torch.stack([values, marks], dim=-1)
    y = values[rows, first] + values[rows, second]
    return x, y


def copy_problem(
    n: int, n_symbols: int = 8, seq_len: int = 5, delay: int = 20, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy (memory) problem: remember ``seq_len`` symbols across ``delay`` blank steps.

    Token ids: ``0`` blank, ``1..n_symbols`` symbols, ``n_symbols + 1`` the "recall" marker.
    The input is ``seq_len`` symbols, ``delay - 1`` blanks, the marker, then ``seq_len`` blanks;
    the target is blank everywhere except the last ``seq_len`` steps, which repeat the symbols.
    Both are ``(n, seq_len + delay + seq_len)`` LongTensors. A model that forgets scores
    ``1 / n_symbols`` on the recalled positions.
    """
    if delay < 1 or seq_len < 1 or n_symbols < 1:
        raise ValueError("n_symbols, seq_len and delay must be positive")
    g = torch.Generator().manual_seed(seed)
    symbols = torch.randint(1, n_symbols + 1, (n, seq_len), generator=g)
    total = seq_len + delay + seq_len
    x = torch.zeros(n, total, dtype=torch.long)
    y = torch.zeros(n, total, dtype=torch.long)
    x[:, :seq_len] = symbols
    x[:, seq_len + delay - 1] = n_symbols + 1
    y[:, -seq_len:] = symbols
    return x, y


# ----------------------------------------------------------------------------- translation tasks

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


# Each format turns a date into a human-readable string. Day-first numeric forms only (no
# "03/05" that could be read either way).
DATE_FORMATS: dict[str, Callable[[_dt.date], str]] = {
    "d month yyyy": lambda t: f"{t.day} {_MONTHS[t.month - 1]} {t.year}",
    "month d, yyyy": lambda t: f"{_MONTHS[t.month - 1]} {t.day}, {t.year}",
    "dd mon yyyy": lambda t: f"{t.day:02d} {_MONTHS[t.month - 1][:3]} {t.year}",
    "mon d yyyy": lambda t: f"{_MONTHS[t.month - 1][:3].lower()} {t.day} {t.year}",
    "dd.mm.yyyy": lambda t: f"{t.day:02d}.{t.month:02d}.{t.year}",
    "d.m.yy": lambda t: f"{t.day}.{t.month}.{t.year % 100:02d}",
    "weekday, d month yyyy": lambda t: f"{_DAYS[t.weekday()]}, {t.day} {_MONTHS[t.month - 1]} {t.year}",
    "the dth of month yyyy": lambda t: f"the {_ordinal(t.day)} of {_MONTHS[t.month - 1]} {t.year}",
    "MONTH D YYYY": lambda t: f"{_MONTHS[t.month - 1].upper()} {t.day} {t.year}",
}

_DATE_START = _dt.date(1950, 1, 1)
_DATE_SPAN = (_dt.date(2049, 12, 31) - _DATE_START).days


def date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs (human-readable date, ISO ``YYYY-MM-DD``), dates between 1950 and 2049.

    The human side uses one of :data:`DATE_FORMATS` chosen at random (``"3 May 2021"``,
    ``"May 3, 2021"``, ``"03.05.2021"``, ``"3.5.21"``, ``"Monday, 3 May 2021"``, ...); two-digit
    years mean 1950-2049, so every source has exactly one answer.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = random.Random(seed)
    formats = list(DATE_FORMATS.values())
    pairs = []
    for _ in range(n):
        day = _DATE_START + _dt.timedelta(days=rng.randint(0, _DATE_SPAN))
        pairs.append((rng.choice(formats)(day), day.isoformat()))
    return pairs


# Where each field sits in the ISO target ``YYYY-MM-DD`` (character positions).
ISO_FIELDS: dict[str, tuple[int, ...]] = {"year": (0, 1, 2, 3), "month": (5, 6), "day": (8, 9)}


def _span(match: re.Match[str] | None) -> list[int]:
    return list(range(match.start(), match.end())) if match else []


def date_fields(text: str, iso: str) -> dict[str, list[int]]:
    """Where the year, the month and the day of ``iso`` are written in ``text`` (character positions).

    Works for every format of :data:`DATE_FORMATS`: the year is the last four- or two-digit group,
    the month its name (full or abbreviated, any case) or the middle number of a dotted date, the
    day the first number (or ordinal) that is not part of the year. Used to measure where an
    attention model looks while it writes each field.

    Example:
        >>> date_fields("the 3rd of May 2021", "2021-05-03")
        {'year': [15, 16, 17, 18], 'month': [11, 12, 13], 'day': [4, 5, 6]}
    """
    year, month, day = (int(part) for part in iso.split("-"))
    years = list(re.finditer(rf"\b({year}|{year % 100:02d})\b", text))
    year_pos = _span(years[-1] if years else None)
    if "." in text:  # dd.mm.yyyy and d.m.yy
        numbers = list(re.finditer(r"\d+", text))
        return {"year": year_pos, "month": _span(numbers[1]), "day": _span(numbers[0])}
    name = _MONTHS[month - 1]
    found = re.search(name, text, re.IGNORECASE) or re.search(name[:3], text, re.IGNORECASE)
    days = [m for m in re.finditer(rf"\b0?{day}(st|nd|rd|th)?\b", text) if m.start() not in year_pos]
    return {"year": year_pos, "month": _span(found), "day": _span(days[0] if days else None)}


def reverse_pairs(
    n: int, min_len: int = 3, max_len: int = 10, alphabet: str = "abcdefghij", seed: int = 0
) -> list[tuple[str, str]]:
    """``n`` pairs (random string over ``alphabet``, the same string reversed)."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    if not alphabet:
        raise ValueError("alphabet is empty")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
        pairs.append((s, s[::-1]))
    return pairs


def encode_pairs(
    pairs: Sequence[tuple[str, str]],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    src_len: int | None = None,
    tgt_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded id tensors for an encoder-decoder.

    * source row: ``tokens + [<eos>]``, then ``<pad>`` up to ``src_len`` (default: the longest);
    * target row: ``[<bos>] + tokens + [<eos>]``, then ``<pad>`` up to ``tgt_len``.

    For teacher forcing the decoder reads ``tgt[:, :-1]`` and is trained to predict ``tgt[:, 1:]``.

    Raises:
        ValueError: on an empty list, or when a sequence is longer than the given length.
    """
    if len(pairs) == 0:
        raise ValueError("no pairs to encode")
    src_rows = [src_vocab.encode(s) + [src_vocab.eos_id] for s, _ in pairs]
    tgt_rows = [[tgt_vocab.bos_id] + tgt_vocab.encode(t) + [tgt_vocab.eos_id] for _, t in pairs]

    def pad(rows: list[list[int]], length: int | None, pad_id: int, what: str) -> torch.Tensor:
        longest = max(len(r) for r in rows)
        length = longest if length is None else length
        if longest > length:
            raise ValueError(f"a {what} sequence has {longest} ids (with specials); {what}_len is {length}")
        out = torch.full((len(rows), length), pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    return (pad(src_rows, src_len, src_vocab.pad_id, "src"), pad(tgt_rows, tgt_len, tgt_vocab.pad_id, "tgt"))


def sequence_accuracy(pred: torch.Tensor, target: torch.Tensor, pad_id: int = 0) -> tuple[float, float]:
    """(token accuracy over non-pad target positions, exact-match accuracy of whole rows).

    ``pred`` and ``target`` are ``(B, T)`` id tensors aligned position by position.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    mask = target != pad_id
    correct = (pred == target) & mask
    token = correct.sum().item() / max(mask.sum().item(), 1)
    exact = (correct | ~mask).all(dim=1).float().mean().item()
    return token, exact
