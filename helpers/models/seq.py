"""Recurrent networks from scratch, in the theses' row-vector convention.

A time step's input ``x`` is a row of ``d`` numbers (a batch is a ``(B, d)`` matrix) and every
weight matrix multiplies from the right, exactly as in the book's equations:

.. math:: h^{(t)} = \\tanh(x^{(t)} W_{xh} + h^{(t-1)} W_{hh} + b_h)

PyTorch stores the transposed matrices (``weight_ih`` is ``(k, d)``) and two bias vectors;
``from_torch`` copies a ``torch.nn.RNN/LSTM/GRU`` (or ``RNNCell/LSTMCell/GRUCell``) into these
modules so both give the same numbers (``tests/test_seq.py`` checks it to 1e-5).

Contents: the cells (:class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`), the multi-step,
multi-layer, optionally bidirectional wrappers (:class:`RNN`, :class:`LSTM`, :class:`GRU`), a
character-level language model (:class:`CharLM`), models for the memory tasks
(:class:`MemoryModel`), and the tools that tie vanishing and exploding gradients to the recurrent
matrix (:func:`bptt_grad_norms`, :func:`spectral_radius`, :func:`spectral_norm`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "RNN",
    "LSTM",
    "GRU",
    "CharLM",
    "train_char_lm",
    "evaluate_char_lm",
    "generate",
    "MemoryModel",
    "train_memory_model",
    "bptt_grad_norms",
    "spectral_radius",
    "spectral_norm",
    "matrix_with_spectral_radius",
]

State = Tensor | tuple[Tensor, Tensor]


def _param(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape))


def _uniform_(params: Sequence[Tensor], hidden_size: int) -> None:
    """PyTorch's recurrent initialisation: U(-1/sqrt(k), 1/sqrt(k))."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in params:
            p.uniform_(-bound, bound)


def _torch_chunks(
    module: nn.Module, suffix: str, n_gates: int
) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
    """Split a torch module's ``weight_ih``/``weight_hh``/biases (with ``suffix``) into per-gate,
    transposed (row-vector) pieces. Missing biases (``bias=False``) become zeros."""
    w_ih = getattr(module, "weight_ih" + suffix).detach()
    w_hh = getattr(module, "weight_hh" + suffix).detach()
    k = w_hh.shape[1]
    b_ih = getattr(module, "bias_ih" + suffix, None)
    b_hh = getattr(module, "bias_hh" + suffix, None)
    b_ih = torch.zeros(n_gates * k) if b_ih is None else b_ih.detach()
    b_hh = torch.zeros(n_gates * k) if b_hh is None else b_hh.detach()
    return (
        [w.T for w in w_ih.chunk(n_gates)],
        [w.T for w in w_hh.chunk(n_gates)],
        list(b_ih.chunk(n_gates)),
        list(b_hh.chunk(n_gates)),
    )


def _copy(dst: Tensor, src: Tensor) -> None:
    if dst.shape != src.shape:
        raise ValueError(f"shape mismatch while copying torch weights: {tuple(src.shape)} -> {tuple(dst.shape)}")
    with torch.no_grad():
        dst.copy_(src)


# ----------------------------------------------------------------------------- cells


class RNNCell(nn.Module):
    """The vanilla (Elman) cell: ``h = tanh(x W_xh + h_prev W_hh + b_h)``.

    Args:
        input_size: ``d``, the width of ``x``.
        hidden_size: ``k``, the width of ``h``.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
    """

    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.W_xh = _param(input_size, hidden_size)
        self.W_hh = _param(hidden_size, hidden_size)
        self.b_h = _param(hidden_size)
        _uniform_(self.parameters(), hidden_size)

    def init_state(self, batch_size: int) -> Tensor:
        """The zero state ``h^(0)``."""
        return torch.zeros(batch_size, self.hidden_size, dtype=self.W_hh.dtype, device=self.W_hh.device)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        phi = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        return phi(x @ self.W_xh + h @ self.W_hh + self.b_h)

    def load_torch(self, module: nn.Module, suffix: str = "") -> RNNCell:
        """Copy weights from ``torch.nn.RNNCell`` (or one layer/direction of ``torch.nn.RNN``)."""
        (w_x,), (w_h,), (b_i,), (b_h,) = _torch_chunks(module, suffix, 1)
        _copy(self.W_xh, w_x), _copy(self.W_hh, w_h), _copy(self.b_h, b_i + b_h)
        return self

    @classmethod
    def from_torch(cls, module: nn.RNNCell) -> RNNCell:
        """A cell with the weights of ``torch.nn.RNNCell`` (same outputs)."""
        cell = cls(module.input_size, module.hidden_size, module.nonlinearity)
        return cell.load_torch(module)


class LSTMCell(nn.Module):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997) with input, forget and output gates.

    The state is the pair ``(h, C)``: hidden state and memory cell.
    """

    n_gates = 4

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        for g in "ifoc":  # input, forget, output gates; c: the candidate memory
            setattr(self, f"W_x{g}", _param(input_size, hidden_size))
            setattr(self, f"W_h{g}", _param(hidden_size, hidden_size))
            setattr(self, f"b_{g}", _param(hidden_size))
        _uniform_(self.parameters(), hidden_size)

    def init_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Zero hidden state and zero memory cell."""
        z = torch.zeros(batch_size, self.hidden_size, dtype=self.W_hi.dtype, device=self.W_hi.device)
        return z, z.clone()

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h_prev, C_prev = state
        I = torch.sigmoid(x @ self.W_xi + h_prev @ self.W_hi + self.b_i)  # input gate
        F = torch.sigmoid(x @ self.W_xf + h_prev @ self.W_hf + self.b_f)  # forget gate
        O = torch.sigmoid(x @ self.W_xo + h_prev @ self.W_ho + self.b_o)  # output gate
        C_tilde = torch.tanh(x @ self.W_xc + h_prev @ self.W_hc + self.b_c)  # candidate memory
        C = F * C_prev + I * C_tilde
        h = O * torch.tanh(C)
        return h, C

    def load_torch(self, module: nn.Module, suffix: str = "") -> LSTMCell:
        """Copy weights from ``torch.nn.LSTMCell`` (or one layer/direction of ``torch.nn.LSTM``).

        PyTorch stacks the gates in the order input, forget, candidate (``g``), output.
        """
        wx, wh, bi, bh = _torch_chunks(module, suffix, 4)
        for idx, g in zip(range(4), "ifco"):
            _copy(getattr(self, f"W_x{g}"), wx[idx])
            _copy(getattr(self, f"W_h{g}"), wh[idx])
            _copy(getattr(self, f"b_{g}"), bi[idx] + bh[idx])
        return self

    @classmethod
    def from_torch(cls, module: nn.LSTMCell) -> LSTMCell:
        """A cell with the weights of ``torch.nn.LSTMCell`` (same outputs)."""
        return cls(module.input_size, module.hidden_size).load_torch(module)


class GRUCell(nn.Module):
    """Gated recurrent unit (Cho et al., 2014): reset gate ``R`` and update gate ``Z``.

    Two published forms differ only in where the reset gate acts on the candidate:

    * ``reset_after=False`` (Cho et al. and the theses): ``tanh(x W_xh + (R * h_prev) W_hh + b_h)``;
    * ``reset_after=True`` (PyTorch and cuDNN): ``tanh(x W_xh + b_h + R * (h_prev W_hh + b_hn))``,
      which keeps a second bias ``b_hn`` inside the product.

    :meth:`from_torch` builds the second form, since only it reproduces ``torch.nn.GRU``.
    """

    n_gates = 3

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.reset_after = input_size, hidden_size, reset_after
        for g in "rzh":  # reset gate, update gate, candidate state
            setattr(self, f"W_x{g}", _param(input_size, hidden_size))
            setattr(self, f"W_h{g}", _param(hidden_size, hidden_size))
            setattr(self, f"b_{g}", _param(hidden_size))
        if reset_after:
            self.b_hn = _param(hidden_size)
        _uniform_(self.parameters(), hidden_size)

    def init_state(self, batch_size: int) -> Tensor:
        """The zero state ``h^(0)``."""
        return torch.zeros(batch_size, self.hidden_size, dtype=self.W_hh.dtype, device=self.W_hh.device)

    def forward(self, x: Tensor, h_prev: Tensor) -> Tensor:
        R = torch.sigmoid(x @ self.W_xr + h_prev @ self.W_hr + self.b_r)  # reset gate
        Z = torch.sigmoid(x @ self.W_xz + h_prev @ self.W_hz + self.b_z)  # update gate
        if self.reset_after:
            h_tilde = torch.tanh(x @ self.W_xh + self.b_h + R * (h_prev @ self.W_hh + self.b_hn))
        else:
            h_tilde = torch.tanh(x @ self.W_xh + (R * h_prev) @ self.W_hh + self.b_h)
        return Z * h_prev + (1 - Z) * h_tilde

    def load_torch(self, module: nn.Module, suffix: str = "") -> GRUCell:
        """Copy weights from ``torch.nn.GRUCell`` (or one layer/direction of ``torch.nn.GRU``).

        PyTorch stacks reset, update, new (candidate); it needs ``reset_after=True``.
        """
        if not self.reset_after:
            raise ValueError("torch.nn.GRU applies the reset gate after the product: build with reset_after=True")
        wx, wh, bi, bh = _torch_chunks(module, suffix, 3)
        for idx, g in zip(range(3), "rzh"):
            _copy(getattr(self, f"W_x{g}"), wx[idx])
            _copy(getattr(self, f"W_h{g}"), wh[idx])
        _copy(self.b_r, bi[0] + bh[0])
        _copy(self.b_z, bi[1] + bh[1])
        _copy(self.b_h, bi[2])
        _copy(self.b_hn, bh[2])
        return self

    @classmethod
    def from_torch(cls, module: nn.GRUCell) -> GRUCell:
        """A cell with the weights of ``torch.nn.GRUCell`` (same outputs)."""
        return cls(module.input_size, module.hidden_size, reset_after=True).load_torch(module)


# ----------------------------------------------------------------------------- sequences


def _run_direction(cell: nn.Module, x: Tensor, state: State, reverse: bool) -> tuple[Tensor, State]:
    """Unroll ``cell`` over ``x`` (``(B, T, d)``), forwards or backwards in time."""
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    outputs: list[Tensor] = [x.new_empty(0)] * x.shape[1]
    for t in steps:
        state = cell(x[:, t], state)
        outputs[t] = state[0] if isinstance(state, tuple) else state
    return torch.stack(outputs, dim=1), state


class _Recurrent(nn.Module):
    """Stacked, optionally bidirectional recurrence over ``(B, T, d)`` inputs (batch first).

    ``forward(x, state=None)`` returns ``(outputs, final_state)`` laid out like PyTorch's:
    ``outputs`` is ``(B, T, num_directions * k)`` (forward and backward states concatenated,
    ``h^(t) = [h_fwd^(t); h_bwd^(t)]``), and the final ``h_n`` (and ``c_n`` for the LSTM) is
    ``(num_layers * num_directions, B, k)``.
    """

    cell_class: type[nn.Module] = RNNCell
    torch_class: type[nn.Module] = nn.RNN

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False, **cell_kwargs
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        cells = []
        for layer in range(num_layers):
            d = input_size if layer == 0 else hidden_size * self.num_directions
            for _ in range(self.num_directions):
                cells.append(self.cell_class(d, hidden_size, **cell_kwargs))
        self.cells = nn.ModuleList(cells)

    def _split_state(self, state: State | None, batch: int) -> list[State]:
        n = self.num_layers * self.num_directions
        if state is None:
            return [cell.init_state(batch) for cell in self.cells]
        if isinstance(state, tuple):
            return [(state[0][i], state[1][i]) for i in range(n)]
        return [state[i] for i in range(n)]

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"expected input (batch, time, {self.input_size}), got {tuple(x.shape)}")
        states = self._split_state(state, x.shape[0])
        finals: list[State] = []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                i = layer * self.num_directions + direction
                out, final = _run_direction(self.cells[i], layer_in, states[i], reverse=direction == 1)
                outs.append(out)
                finals.append(final)
            layer_in = torch.cat(outs, dim=-1)
        if isinstance(finals[0], tuple):
            return layer_in, (torch.stack([f[0] for f in finals]), torch.stack([f[1] for f in finals]))
        return layer_in, torch.stack(finals)

    @classmethod
    def _kwargs_from_torch(cls, module: nn.Module) -> dict:
        return {}

    @classmethod
    def from_torch(cls, module: nn.Module) -> _Recurrent:
        """A module with the weights of the matching ``torch.nn`` recurrent module.

        Our modules are always batch first; call the torch module with ``batch_first=True`` (or
        transpose) to compare. Dropout between layers is not copied (compare in ``eval()`` mode).

        Raises:
            TypeError: when ``module`` is not the matching torch class.
            ValueError: for an LSTM with ``proj_size > 0`` (not supported).
        """
        if not isinstance(module, cls.torch_class):
            raise TypeError(
                f"{cls.__name__}.from_torch needs a {cls.torch_class.__name__}, got {type(module).__name__}"
            )
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTM with proj_size > 0 is not supported")
        ours = cls(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bidirectional,
            **cls._kwargs_from_torch(module),
        )
        for layer in range(module.num_layers):
            for direction in range(ours.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                ours.cells[layer * ours.num_directions + direction].load_torch(module, suffix)
        return ours.to(dtype=module.weight_hh_l0.dtype, device=module.weight_hh_l0.device)


class RNN(_Recurrent):
    """Vanilla RNN over a sequence; ``bidirectional=True`` gives the BiRNN of the book."""

    cell_class, torch_class = RNNCell, nn.RNN

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, bidirectional, nonlinearity=nonlinearity)

    @classmethod
    def _kwargs_from_torch(cls, module: nn.Module) -> dict:
        return {"nonlinearity": module.nonlinearity}


class LSTM(_Recurrent):
    """LSTM over a sequence (stacked, optionally bidirectional)."""

    cell_class, torch_class = LSTMCell, nn.LSTM


class GRU(_Recurrent):
    """GRU over a sequence (stacked, optionally bidirectional)."""

    cell_class, torch_class = GRUCell, nn.GRU

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        reset_after: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, bidirectional, reset_after=reset_after)

    @classmethod
    def _kwargs_from_torch(cls, module: nn.Module) -> dict:
        return {"reset_after": True}


_SCRATCH = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _recurrent(kind: str, input_size: int, hidden_size: int, impl: str) -> nn.Module:
    kind = kind.lower()
    if kind not in _SCRATCH:
        raise ValueError(f"cell must be one of {sorted(_SCRATCH)}, got {kind!r}")
    if impl == "scratch":
        return _SCRATCH[kind](input_size, hidden_size)
    if impl == "torch":
        return _TORCH[kind](input_size, hidden_size, batch_first=True)
    raise ValueError(f"impl must be 'scratch' or 'torch', got {impl!r}")


# ----------------------------------------------------------------------------- char LM


class CharLM(nn.Module):
    """Character-level language model: embedding -> recurrent layer -> ``o = h W_out + b_out``.

    Args:
        vocab_size: number of characters (with specials).
        embed_size: width of the character embeddings.
        hidden_size: width of the hidden state.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        impl: ``"scratch"`` (this module's cells) or ``"torch"`` (``torch.nn``; the same maths,
            much faster on long runs).
    """

    def __init__(
        self, vocab_size: int, embed_size: int = 32, hidden_size: int = 128, cell: str = "rnn", impl: str = "scratch"
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.rnn = _recurrent(cell, embed_size, hidden_size, impl)
        self.W_out = nn.Parameter(torch.randn(hidden_size, vocab_size) / math.sqrt(hidden_size))
        self.b_out = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits ``(B, T, V)`` for the next character at every step, and the final state."""
        h, state = self.rnn(self.embed(ids), state)
        return h @ self.W_out + self.b_out, state


def train_char_lm(
    model: CharLM,
    ids: Sequence[int] | Tensor,
    steps: int,
    seq_len: int = 64,
    batch_size: int = 32,
    lr: float = 3e-3,
    clip: float = 1.0,
    seed: int = 0,
    eval_ids: Sequence[int] | Tensor | None = None,
    eval_every: int = 50,
) -> dict[str, list[float]]:
    """Train with Adam on random windows of ``ids``; gradients clipped to norm ``clip``
    (Pascanu et al., 2013).

    Returns ``{"train": loss per step, "eval_step": [...], "eval": [...]}`` in nats per character;
    ``eval`` is :func:`evaluate_char_lm` on ``eval_ids`` every ``eval_every`` steps and at the end
    (empty without ``eval_ids``).
    """
    from ..seqdata import lm_batches

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    device = next(model.parameters()).device
    hist: dict[str, list[float]] = {"train": [], "eval_step": [], "eval": []}
    for step in range(1, steps + 1):
        model.train()
        x, y = lm_batches(ids, seq_len, batch_size, generator=g)
        logits, _ = model(x.to(device))
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        hist["train"].append(loss.item())
        if eval_ids is not None and (step % eval_every == 0 or step == steps):
            hist["eval_step"].append(step)
            hist["eval"].append(evaluate_char_lm(model, eval_ids, seq_len))
    return hist


@torch.no_grad()
def evaluate_char_lm(model: CharLM, ids: Sequence[int] | Tensor, seq_len: int = 64) -> float:
    """Mean cross-entropy (nats per character) of next-character prediction over ``ids``,
    read in consecutive windows of ``seq_len`` with the state carried from window to window."""
    data = torch.as_tensor(ids, dtype=torch.long)
    if data.numel() < 2:
        raise ValueError("need at least two tokens to evaluate")
    model.eval()
    device = next(model.parameters()).device
    state, total, count = None, 0.0, 0
    for start in range(0, data.numel() - 1, seq_len):
        x = data[start : start + seq_len][None].to(device)
        y = data[start + 1 : start + seq_len + 1][None].to(device)
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)
        total += nn.functional.cross_entropy(logits[0], y[0], reduction="sum").item()
        count += y.numel()
    return total / count


@torch.no_grad()
def generate(model: CharLM, vocab, prompt: str, n: int = 200, temperature: float = 0.8, seed: int = 0) -> str:
    """Sample ``n`` characters after ``prompt`` (``temperature`` < 1 sharpens the distribution)."""
    if not prompt:
        raise ValueError("prompt must contain at least one character")
    g = torch.Generator().manual_seed(seed)
    model.eval()
    device = next(model.parameters()).device
    ids = torch.tensor([vocab.encode(prompt)], device=device)
    logits, state = model(ids)
    out = []
    for _ in range(n):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1).cpu()
        nxt = torch.multinomial(probs, 1, generator=g).item()
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state)
    return prompt + vocab.decode(out, stop_at_eos=False)


# ----------------------------------------------------------------------------- memory tasks


class MemoryModel(nn.Module):
    """A recurrent layer and a linear read-out, for the adding and copy problems.

    ``task="adding"``: inputs ``(B, T, 2)`` floats, one number out per sequence (from the last
    state). ``task="copy"``: inputs ``(B, T)`` token ids, ``n_classes`` logits out at every step.
    """

    def __init__(
        self, cell: str, hidden_size: int = 64, task: str = "adding", n_classes: int = 10, impl: str = "torch"
    ) -> None:
        super().__init__()
        if task not in ("adding", "copy"):
            raise ValueError(f"task must be 'adding' or 'copy', got {task!r}")
        self.task = task
        if task == "copy":
            self.embed = nn.Embedding(n_classes, 16)
            in_size = 16
        else:
            in_size = 2
        self.rnn = _recurrent(cell, in_size, hidden_size, impl)
        self.head = nn.Linear(hidden_size, n_classes if task == "copy" else 1)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.rnn(self.embed(x) if self.task == "copy" else x)
        return self.head(h).squeeze(-1) if self.task == "copy" else self.head(h[:, -1]).squeeze(-1)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean squared error (adding) or cross-entropy over all steps (copy)."""
        out = self(x)
        if self.task == "adding":
            return nn.functional.mse_loss(out, y)
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def train_memory_model(
    model: MemoryModel,
    make_batch: Callable[[int], tuple[Tensor, Tensor]],
    steps: int,
    lr: float = 1e-2,
    clip: float = 1.0,
    eval_batch: tuple[Tensor, Tensor] | None = None,
    eval_every: int = 25,
) -> dict[str, list[float]]:
    """Adam with gradient clipping on fresh batches ``make_batch(step)`` (moved to the model's device).

    Returns ``{"step": [...], "train": [...], "eval": [...], "seconds": [...]}``; ``eval`` is the
    loss on ``eval_batch`` every ``eval_every`` steps (and at the last step).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    device = next(model.parameters()).device
    if eval_batch is not None:
        eval_batch = (eval_batch[0].to(device), eval_batch[1].to(device))
    hist: dict[str, list[float]] = {"step": [], "train": [], "eval": [], "seconds": []}
    start = time.perf_counter()
    for step in range(steps):
        model.train()
        x, y = make_batch(step)
        loss = model.loss(x.to(device), y.to(device))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if eval_batch is not None and (step % eval_every == 0 or step == steps - 1):
            model.eval()
            with torch.no_grad():
                ev = model.loss(*eval_batch).item()
            hist["step"].append(step + 1)
            hist["train"].append(loss.item())
            hist["eval"].append(ev)
            hist["seconds"].append(time.perf_counter() - start)
    return hist


# ----------------------------------------------------------------------------- BPTT


def bptt_grad_norms(cell: RNNCell, x: Tensor, h0: Tensor | None = None, direction: Tensor | None = None) -> Tensor:
    """``||dL/dh^(t)||`` for every step ``t`` of an unrolled vanilla RNN, with ``L`` read at the end.

    The loss is ``L = h^(T) . u`` for a fixed unit vector ``u`` (``direction``; default the
    normalised all-ones vector), so ``||dL/dh^(T)|| = 1`` and every earlier norm says how much of
    the signal survives the trip back. ``x`` is ``(B, T, d)``; the norms are averaged over the batch.
    Returns a ``(T,)`` tensor, index ``t-1`` for step ``t``.
    """
    B, T, _ = x.shape
    h = cell.init_state(B) if h0 is None else h0
    states = []
    for t in range(T):
        h = cell(x[:, t], h)
        h.retain_grad()
        states.append(h)
    u = torch.ones(cell.hidden_size) if direction is None else direction
    u = (u / u.norm()).to(h)
    (h @ u).sum().backward()
    return torch.stack([s.grad.norm(dim=-1).mean() for s in states]).detach()


def spectral_radius(W: Tensor, iters: int = 500, seed: int = 0) -> float:
    """Largest |eigenvalue| of a square ``W``, by the power method.

    Repeatedly multiplying a vector by ``W`` keeps only its component along the dominant
    eigenvector(s); the growth per step tends to ``rho(W)`` (Gelfand: ``||W^n v||^(1/n) -> rho``).
    The geometric mean of the per-step growth over the second half of the iterations is returned,
    which also converges when the dominant eigenvalues are a complex pair.
    """
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be square, got {tuple(W.shape)}")
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(W.shape[0], generator=g, dtype=torch.float64)
    M = W.detach().to(torch.float64).cpu()
    logs = []
    for _ in range(iters):
        v = v @ M  # row-vector convention: v W
        n = v.norm()
        if n == 0:
            return 0.0
        logs.append(torch.log(n))
        v = v / n
    tail = torch.stack(logs[iters // 2 :])
    return float(torch.exp(tail.mean()))


def spectral_norm(W: Tensor, iters: int = 200, seed: int = 0) -> float:
    """Largest singular value of ``W`` (power method on ``W^T W``): the most a step can stretch."""
    g = torch.Generator().manual_seed(seed)
    M = W.detach().to(torch.float64).cpu()
    v = torch.randn(M.shape[1], generator=g, dtype=torch.float64)
    for _ in range(iters):
        v = M.T @ (M @ v)
        v = v / v.norm()
    return float((M @ v).norm())


def matrix_with_spectral_radius(k: int, rho: float, seed: int = 0) -> Tensor:
    """A random ``k x k`` Gaussian matrix rescaled so its spectral radius is exactly ``rho``."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(k, k, generator=g, dtype=torch.float64) / math.sqrt(k)
    W = W * (rho / torch.linalg.eigvals(W).abs().max())
    return W.to(torch.float32)
