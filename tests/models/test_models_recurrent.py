"""The recurrent layers (lstm, gru) against torch.nn.LSTM / torch.nn.GRU on the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.models.build import BuildContext, Network, build_layers
from cnnlab.models.layers import Recurrent
from cnnlab.models.spec import SpecError, format_spec, parse_spec
from cnnlab.models.summary import summarize

TORCH_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def _reference(layer: Recurrent) -> nn.Module:
    ref = TORCH_CELLS[layer.cell](layer.features, layer.units, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(layer, name))
    return ref


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_layer_matches_torch_on_the_same_weights_forward_and_backward(cell):
    torch.manual_seed(0)
    layer = Recurrent(cell, features=3 * 5, units=7, all_states=True).double()
    ref = _reference(layer).double()
    x = torch.randn(4, 3, 6, 5, dtype=torch.double, requires_grad=True)  # N, C, T=H rows, W
    ours = layer(x)  # N x 1 x T x units
    # the same sequence for torch: row t's W x C values (channels last within a row)
    seq = x.permute(0, 2, 3, 1).reshape(4, 6, 15)
    theirs, _ = ref(seq)
    assert ours.shape == (4, 1, 6, 7)
    torch.testing.assert_close(ours[:, 0], theirs, rtol=1e-10, atol=1e-12)
    g = torch.randn_like(theirs)
    grads = torch.autograd.grad((ours[:, 0] * g).sum(), [x, layer.weight_hh, layer.bias_ih])
    ref_grads = torch.autograd.grad((theirs * g).sum(), [x, ref.weight_hh_l0, ref.bias_ih_l0])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_last_state_is_the_last_step_of_all_states():
    torch.manual_seed(1)
    last = Recurrent("lstm", 4, 5)
    every = Recurrent("lstm", 4, 5, all_states=True)
    every.load_state_dict(last.state_dict())
    x = torch.randn(3, 1, 7, 4)
    torch.testing.assert_close(last(x), every(x)[:, 0, -1])


def test_spec_tokens_round_trip_and_shapes():
    specs = parse_spec("lstm128:all gru64 fc")
    assert format_spec(specs) == "lstm128:all gru64 fc"
    assert parse_spec("LSTM16:last")[0].params.states == "last" and format_spec(parse_spec("lstm16:last")) == "lstm16"
    net = Network(specs, (1, 28, 28), 10)
    assert [i.out_shape for i in net.infos] == [(1, 28, 128), (64,), (10,)]
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_recurrent_layer_needs_a_volume():
    with pytest.raises(SpecError, match="needs an image volume"):
        build_layers(parse_spec("fc8 lstm4"), (1, 4, 4), BuildContext(10))


def test_summary_row_counts_the_gates_weights_and_flops():
    net = Network(parse_spec("lstm8 fc"), (2, 5, 3), 10)  # T=5 rows of 3 x 2 = 6 features
    row = summarize(net)["rows"][1]
    assert row["layer"] == "LSTM8" and row["formula"] == "4*8*(6+8)"
    assert row["weights"] == 4 * 8 * (6 + 8) and row["biases"] == 2 * 4 * 8
    assert row["flops"] == 2 * 5 * 4 * 8 * (6 + 8)
