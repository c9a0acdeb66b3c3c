"""Recurrent networks from scratch against torch.nn with copied weights, and the BPTT tools."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import seqdata
from helpers.models import seq

TOL = 1e-5  # float32; measured differences are around 1e-7


# Tiny models run fastest (and least disturbed by a busy machine) on one thread.
pytestmark = pytest.mark.usefixtures("one_thread")


def _max_diff(a, b) -> float:
    if isinstance(a, tuple):
        return max(_max_diff(x, y) for x, y in zip(a, b))
    return (a - b).abs().max().item()


@pytest.mark.parametrize(
    "ours, theirs", [(seq.RNNCell, nn.RNNCell), (seq.LSTMCell, nn.LSTMCell), (seq.GRUCell, nn.GRUCell)]
)
def test_cells_equal_torch(ours, theirs):
    torch.manual_seed(0)
    ref = theirs(6, 5)
    cell = ours.from_torch(ref)
    x = torch.randn(4, 6)
    if ours is seq.LSTMCell:
        state = (torch.randn(4, 5), torch.randn(4, 5))
    else:
        state = torch.randn(4, 5)
    assert _max_diff(cell(x, state), ref(x, state)) < TOL


def test_relu_rnn_cell_equals_torch():
    torch.manual_seed(1)
    ref = nn.RNNCell(3, 4, nonlinearity="relu")
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    assert _max_diff(seq.RNNCell.from_torch(ref)(x, h), ref(x, h)) < TOL


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (1, True), (2, False), (3, True)])
def test_sequences_equal_torch(kind, layers, bidirectional):
    torch.manual_seed(0)
    ref = getattr(nn, kind)(5, 7, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    ours = getattr(seq, kind).from_torch(ref)
    x = torch.randn(3, 11, 5)
    out_ref, state_ref = ref(x)
    out, state = ours(x)
    assert out.shape == out_ref.shape == (3, 11, 7 * (2 if bidirectional else 1))
    assert _max_diff(out, out_ref) < TOL
    assert _max_diff(state, state_ref) < TOL
    # with a given initial state as well
    n = layers * (2 if bidirectional else 1)
    init = (torch.randn(n, 3, 7), torch.randn(n, 3, 7)) if kind == "LSTM" else torch.randn(n, 3, 7)
    assert _max_diff(ours(x, init)[0], ref(x, init)[0]) < TOL


def test_birnn_backward_direction_reads_reversed_sequence():
    torch.manual_seed(0)
    birnn = seq.RNN(3, 4, bidirectional=True)
    x = torch.randn(2, 6, 3)
    out, _ = birnn(x)
    # backward half at step t equals a forward pass of the reverse cell over the flipped input
    h = birnn.cells[1].init_state(2)
    states = []
    for t in reversed(range(6)):
        h = birnn.cells[1](x[:, t], h)
        states.append(h)
    expected = torch.stack(states[::-1], dim=1)
    assert torch.allclose(out[..., 4:], expected)


def test_gru_forms_differ_and_torch_needs_reset_after():
    torch.manual_seed(0)
    ref = nn.GRUCell(3, 4)
    cell = seq.GRUCell.from_torch(ref)
    x, h = torch.randn(5, 3), torch.randn(5, 4)
    theses_form = seq.GRUCell(3, 4, reset_after=False)
    theses_form.load_state_dict({k: v for k, v in cell.state_dict().items() if k != "b_hn"})
    # same weights, different placement of the reset gate: the outputs differ
    assert _max_diff(theses_form(x, h), ref(x, h)) > 1e-4
    with pytest.raises(ValueError, match="reset_after"):
        seq.GRUCell(3, 4).load_torch(ref)


def test_gru_theses_form_by_hand():
    cell = seq.GRUCell(1, 1, reset_after=False)
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(0.5)
    x, h = torch.tensor([[1.0]]), torch.tensor([[2.0]])
    s = torch.sigmoid(torch.tensor(0.5 + 1.0 + 0.5))  # both gates: 0.5*1 + 0.5*2 + 0.5
    h_tilde = torch.tanh(0.5 * 1 + s * 2 * 0.5 + 0.5)
    assert torch.allclose(cell(x, h), s * 2 + (1 - s) * h_tilde)


def test_from_torch_rejects_wrong_class_and_proj():
    with pytest.raises(TypeError):
        seq.LSTM.from_torch(nn.GRU(2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        seq.LSTM.from_torch(nn.LSTM(2, 4, proj_size=2))
    with pytest.raises(ValueError, match="expected input"):
        seq.RNN(3, 4)(torch.randn(2, 5, 2))


def test_gradients_match_torch():
    torch.manual_seed(0)
    ref = nn.LSTM(3, 4, batch_first=True)
    ours = seq.LSTM.from_torch(ref)
    x = torch.randn(2, 7, 3)
    ref(x)[0].sum().backward()
    ours(x)[0].sum().backward()
    # dL/dW_hi is the transposed first block of weight_hh
    assert torch.allclose(ours.cells[0].W_hi.grad, ref.weight_hh_l0.grad[:4].T, atol=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_spectral_radius_power_method(seed):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(40, 40, generator=g) / 6
    exact = torch.linalg.eigvals(W.double()).abs().max().item()
    assert seq.spectral_radius(W, iters=2000) == pytest.approx(exact, rel=0.02)
    assert seq.spectral_norm(W) == pytest.approx(torch.linalg.matrix_norm(W.double(), 2).item(), rel=1e-4)


def test_matrix_with_spectral_radius():
    W = seq.matrix_with_spectral_radius(32, 1.3, seed=2)
    assert torch.linalg.eigvals(W.double()).abs().max().item() == pytest.approx(1.3, rel=1e-5)


def test_bptt_norms_vanish_and_explode_with_spectral_radius():
    torch.manual_seed(0)
    x = torch.randn(4, 40, 3) * 0.1
    norms = {}
    for rho in (0.5, 1.5):
        cell = seq.RNNCell(3, 32)
        with torch.no_grad():
            cell.W_hh.copy_(seq.matrix_with_spectral_radius(32, rho, seed=0))
            cell.b_h.zero_()
        norms[rho] = seq.bptt_grad_norms(cell, x)
        assert norms[rho].shape == (40,)
        assert norms[rho][-1].item() == pytest.approx(1.0, rel=1e-5)
    assert norms[0.5][0] < 1e-6  # vanishing
    assert norms[1.5][0] > 10  # exploding


def test_char_lm_learns_and_generates():
    torch.manual_seed(0)
    vocab = seqdata.Vocab.from_texts([seqdata.CORPUS])
    ids = vocab.encode(seqdata.CORPUS)
    model = seq.CharLM(len(vocab), 16, 32, cell="gru", impl="torch")
    before = seq.evaluate_char_lm(model, ids[:300])
    hist = seq.train_char_lm(model, ids, steps=15, seq_len=32, batch_size=16, lr=1e-2, eval_ids=ids[:300], eval_every=7)
    assert len(hist["train"]) == 15 and hist["train"][-1] < hist["train"][0]
    assert hist["eval_step"] == [7, 14, 15]
    assert hist["eval"][-1] == pytest.approx(seq.evaluate_char_lm(model, ids[:300]))
    assert hist["eval"][-1] < before
    text = seq.generate(model, vocab, "The ", n=20)
    assert text.startswith("The ") and len(text) >= 20
    # the scratch implementation gives the same logits once weights are shared
    scratch = seq.CharLM(len(vocab), 16, 32, cell="gru", impl="scratch")
    scratch.embed.load_state_dict(model.embed.state_dict())
    scratch.rnn = seq.GRU.from_torch(model.rnn)
    scratch.W_out, scratch.b_out = model.W_out, model.b_out
    x = torch.tensor([ids[:20]])
    assert torch.allclose(scratch(x)[0], model(x)[0], atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_memory_models_train(cell):
    torch.manual_seed(0)
    m = seq.MemoryModel(cell, hidden_size=8, task="adding")
    ev = seqdata.adding_problem(64, 10, seed=9)
    h = seq.train_memory_model(
        m, lambda s: seqdata.adding_problem(32, 10, seed=s), steps=20, eval_batch=ev, eval_every=19
    )
    assert h["eval"][-1] < h["eval"][0]
    c = seq.MemoryModel(cell, hidden_size=8, task="copy", n_classes=6)
    x, y = seqdata.copy_problem(4, n_symbols=4, seq_len=2, delay=3)
    assert c(x).shape == (4, 7, 6) and c.loss(x, y).item() > 0
    with pytest.raises(ValueError):
        seq.MemoryModel("transformer")
