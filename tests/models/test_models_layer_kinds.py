"""A layer kind is one unit: its ``LayerKind`` entry (grammar, role, summary rule, gradcheck
cases) plus one builder under the same name; the kind tuples other code uses are derived
from the entries and keep the values they had when they were written out by hand."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cnnlab.models import gradcheck, summary
from cnnlab.models.build import BUILDERS, BuildContext, build_layers
from cnnlab.models.spec import (ACTIVATION_KINDS, KINDS, LAYER_CHECKS, LAYERS, LINEAR_KINDS, ROLES, STAGE_KINDS,
                                SUMMARY_RULES, LayerKind, NoParams, parse_spec, walk)
from cnnlab.monitor.layers import WATCHED_ACTIVATIONS

KIND_NAMES = [k.name for k in KINDS]


def test_kinds_lists_every_registered_kind_once_in_registration_order():
    assert sorted(KIND_NAMES) == sorted({LAYERS.get(n).name for n in LAYERS.names()})
    assert len(set(KIND_NAMES)) == len(KIND_NAMES)
    assert all(LAYERS.get(k.name) is k for k in KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=KIND_NAMES)
def test_every_kind_has_a_builder_a_role_a_summary_rule_and_gradcheck_cases(kind):
    assert kind.name in BUILDERS
    assert kind.role in ROLES
    assert kind.summary in SUMMARY_RULES
    assert kind.checks
    for case in kind.checks:
        assert case in LAYER_CHECKS
        assert kind.name in {s.kind for s in walk(parse_spec(case.spec))}, f"{case.spec} has no {kind.name}"


def test_every_builder_belongs_to_a_kind():
    assert sorted(BUILDERS.names()) == sorted(KIND_NAMES)


@pytest.mark.parametrize("spec, shape", LAYER_CHECKS, ids=[s for s, _ in LAYER_CHECKS])
def test_every_gradcheck_case_builds_and_runs(spec, shape):
    layers, infos, out = build_layers(parse_spec(spec, "gradcheck"), shape, BuildContext(num_classes=10))
    assert infos[0].in_shape == tuple(shape) and infos[-1].out_shape == out
    y = layers(torch.randn(2, *shape))
    assert tuple(y.shape) == (2, *out)


def test_derived_kind_tuples_keep_their_hand_written_values():
    assert LINEAR_KINDS == ("conv", "fc")
    # the hand-written tuple's eight plus gelu (airbench94); ordered as the kinds are registered
    assert ACTIVATION_KINDS == ("sigmoid", "tanh", "relu", "gelu", "lrelu", "prelu", "elu", "arctan", "softplus")
    assert STAGE_KINDS == ("conv", "fc", "pool", "gap", "flatten", "res", "lstm", "gru")
    assert summary.STAGE_KINDS is STAGE_KINDS and gradcheck.LAYER_CHECKS is LAYER_CHECKS
    assert LAYER_CHECKS == [
        ("conv3-4", (2, 6, 6)), ("conv3-3s2p1", (2, 7, 7)), ("fc5", (2, 3, 3)), ("fc4", (6,)),
        ("pool2", (2, 6, 6)), ("pool3s2", (2, 7, 7)), ("pool2:ceil", (2, 5, 5)), ("avgpool2", (2, 6, 6)),
        ("avgpool3s2p1", (2, 7, 7)), ("gap", (3, 4, 4)), ("flatten", (2, 3, 3)),
        ("bn", (3, 4, 4)), ("bn", (6,)), ("bn:frozen:eps1e-12:m0.4", (3, 4, 4)),
        ("scale0.5", (2, 3, 3)), ("fc4 scale0.1111", (6,)),
        ("sigmoid", (2, 3, 3)), ("tanh", (2, 3, 3)), ("relu", (2, 3, 3)), ("gelu", (2, 3, 3)), ("lrelu0.1", (2, 3, 3)),
        ("prelu", (2, 3, 3)), ("elu", (2, 3, 3)), ("arctan", (2, 3, 3)), ("softplus", (2, 3, 3)),
        ("conv3-3p1 maxout2", (2, 5, 5)), ("fc4 maxout3", (6,)), ("conv3-2p1 bn maxout2", (2, 5, 5)),
        ("keep0.6:inverted", (2, 3, 3)), ("keep0.6:classic", (2, 3, 3)), ("drop0.3:classic", (8,)),
        ("res(conv3-2p1 bn relu)", (2, 5, 5)), ("softmax", (5,)),
        ("lstm3", (2, 4, 3)), ("lstm3:all", (1, 4, 3)), ("gru3", (2, 4, 3)), ("gru2:all gru3", (1, 4, 3)),
    ]


def test_roles_of_the_kinds():
    roles = {k.name: k.role for k in KINDS}
    assert roles == {
        "conv": "linear", "fc": "linear", "pool": "pooling", "gap": "pooling", "flatten": "reshape",
        "bn": "normalization", "scale": "scaling", **{a: "activation" for a in ACTIVATION_KINDS}, "maxout": "feature_pooling",
        "dropout": "regularization", "res": "block", "softmax": "output",
        "lstm": "recurrent", "gru": "recurrent",
    }
    assert set(roles.values()) == set(ROLES)  # no role without a kind


def test_a_layer_kind_entry_is_checked_when_it_is_made():
    parts = ("x", NoParams, "x", lambda m: {}, lambda s: "x", "x")
    with pytest.raises(ValueError, match="role 'nonlinear' is not one of linear, activation"):
        LayerKind(*parts, "nonlinear", "fold", (("x", (2,)),))
    with pytest.raises(ValueError, match="summary 'rows' is not one of row, fold"):
        LayerKind(*parts, "activation", "rows", (("x", (2,)),))
    with pytest.raises(ValueError, match="needs at least one gradcheck case"):
        LayerKind(*parts, "activation", "fold", ())


def test_watched_activations_are_spec_activations_the_monitor_can_find():
    assert set(WATCHED_ACTIVATIONS) == {"relu", "tanh", "sigmoid"}
    assert set(WATCHED_ACTIVATIONS) <= set(ACTIVATION_KINDS)


def test_the_spec_language_stays_torch_free():
    code = "import sys, cnnlab.models.spec as s; s.parse_spec('conv3-4 relu fc'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
