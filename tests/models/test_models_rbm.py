"""RBM gradients on a tiny machine (4 visible x 3 hidden) whose likelihood can be enumerated.

The reference is a NumPy transcription of seeds/001's gradient ``<v h>_data - <v h>_model``:
the model term exactly (every state weighed by P(v)), and the *expected* CD-k / PCD model term
(the data's distribution, or the particles', moved k steps by the Gibbs transition matrix
``T[v, v'] = sum_h P(h | v) P(v' | h)``). The torch estimates are Monte Carlo averages over
many chains and must agree with the expectation within a few standard errors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cnnlab.models.rbm import (RBM, all_states, exact_gradient, exact_log_likelihood, k_at, model_marginal,
                               sgd_update)

N_V, N_H = 4, 3
STATES_V = np.array(list(itertools.product([0, 1], repeat=N_V)), dtype=float)  # all_states order
STATES_H = np.array(list(itertools.product([0, 1], repeat=N_H)), dtype=float)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- the NumPy transcription -------------------------------------------------------------------
def np_stats(W, c, v, weights):
    """<v h^T>, <v>, <h> under the distribution ``weights`` over rows ``v``, h = P(h | v)."""
    h = sigmoid(v @ W + c)
    return (v * weights[:, None]).T @ h, weights @ v, weights @ h


def np_marginal(W, b, c):
    """P(v) from the joint exp(v^T W h + b^T v + c^T h) summed over h, normalised over v."""
    joint = np.exp(STATES_V @ W @ STATES_H.T + (STATES_V @ b)[:, None] + (STATES_H @ c)[None, :])
    p = joint.sum(1)
    return p / p.sum()


def np_transition(W, b, c):
    """T[v, v'] = sum_h P(h | v) P(v' | h)."""
    ph = sigmoid(STATES_V @ W + c)  # 16 x 3
    p_h_given_v = np.prod(np.where(STATES_H[None] == 1, ph[:, None], 1 - ph[:, None]), axis=2)  # 16 x 8
    pv = sigmoid(STATES_H @ W.T + b)  # 8 x 4
    p_v_given_h = np.prod(np.where(STATES_V[None] == 1, pv[:, None], 1 - pv[:, None]), axis=2)  # 8 x 16
    return p_h_given_v @ p_v_given_h


def np_data_distribution(data):
    index = (data @ (2 ** np.arange(N_V - 1, -1, -1))).astype(int)
    return np.bincount(index, minlength=2 ** N_V) / len(data)


def np_gradient(W, b, c, data, model_weights):
    uniform = np.full(len(data), 1 / len(data))
    return [d - m for d, m in zip(np_stats(W, c, data, uniform), np_stats(W, c, STATES_V, model_weights))]


def np_cd_expected(W, b, c, data, k):
    """E[CD-k estimate]: the chains' end states are distributed as q_data T^k."""
    q = np_data_distribution(data) @ np.linalg.matrix_power(np_transition(W, b, c), k)
    return np_gradient(W, b, c, data, q)


def np_exact(W, b, c, data):
    return np_gradient(W, b, c, data, np_marginal(W, b, c))


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: thread hand-offs cost more than the arithmetic (as in gradcheck)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 1.5, (N_V, N_H))  # strong weights: CD-1's bias is clearly visible
    b, c = rng.normal(0, 0.5, N_V), rng.normal(0, 0.5, N_H)
    data = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 1]], dtype=float)
    rbm = RBM(*(torch.tensor(t) for t in (W, b, c)))
    return rbm, (W, b, c), data


def _max_diff(a, b) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b))


def _as_numpy(grads):
    return [g.numpy() for g in grads]


# -- tests --------------------------------------------------------------------------------------
def test_exact_gradient_matches_the_enumerated_likelihood_and_the_numpy_formula(tiny):
    rbm, (W, b, c), data = tiny
    v = torch.tensor(data)
    params = [t.clone().requires_grad_(True) for t in (rbm.W, rbm.b, rbm.c)]
    log_likelihood = exact_log_likelihood(RBM(*params), v)
    autograd = torch.autograd.grad(log_likelihood, params)
    exact = exact_gradient(rbm, v)
    for ours, numeric in zip(exact, autograd):
        torch.testing.assert_close(ours, numeric, rtol=1e-10, atol=1e-12)
    assert _max_diff(_as_numpy(exact), np_exact(W, b, c, data)) < 1e-12
    assert np.allclose(model_marginal(rbm).numpy(), np_marginal(W, b, c))
    assert torch.equal(all_states(N_V), torch.tensor(STATES_V))


def test_expected_cd_k_converges_to_the_exact_gradient_as_k_grows(tiny):
    _, (W, b, c), data = tiny
    exact = np_exact(W, b, c, data)
    errors = [_max_diff(np_cd_expected(W, b, c, data, k), exact) for k in (1, 3, 10, 30, 200)]
    assert errors[0] > 0.05  # CD-1 is biased on this machine
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 1e-6  # the chain has mixed: T^k -> the model's P(v)


@pytest.mark.parametrize("k", [1, 5])
def test_cd_k_estimate_matches_the_numpy_expectation(tiny, k):
    rbm, (W, b, c), data = tiny
    chains = torch.tensor(np.repeat(data, 20_000, axis=0))  # 100,000 chains
    estimate = rbm.cd_gradient(chains, k, torch.Generator().manual_seed(k))
    expected = np_cd_expected(W, b, c, data, k)
    # standard error of a mean of 1e5 terms bounded by 0.5: 1.6e-3; allow ~4 of them
    assert _max_diff(_as_numpy(estimate), expected) < 7e-3
    if k == 5:  # closer to the exact gradient than CD-1 is
        exact = np_exact(W, b, c, data)
        assert _max_diff(expected, exact) < 0.5 * _max_diff(np_cd_expected(W, b, c, data, 1), exact)


def test_pcd_particles_move_by_the_transition_matrix_and_reach_the_exact_gradient(tiny):
    rbm, (W, b, c), data = tiny
    v = torch.tensor(data)
    particles = torch.zeros(40_000, N_V, dtype=torch.float64)  # all start at state 0000
    q = np.eye(2 ** N_V)[0]
    T = np_transition(W, b, c)
    generator = torch.Generator().manual_seed(0)
    for step in range(1, 21):
        estimate, particles = rbm.pcd_gradient(v, particles, 1, generator)
        q = q @ T
        if step in (1, 2, 20):  # standard error <= 0.5 / sqrt(40,000) = 2.5e-3
            assert _max_diff(_as_numpy(estimate), np_gradient(W, b, c, data, q)) < 1e-2
    first = np_gradient(W, b, c, data, np.eye(2 ** N_V)[0] @ T)
    assert _max_diff(first, np_exact(W, b, c, data)) > 0.1  # one step from 0000 is far from it
    assert _max_diff(_as_numpy(estimate), np_exact(W, b, c, data)) < 1e-2


def kl(p, q):
    return float((p * np.log(p / q)).sum())


@pytest.mark.parametrize("algorithm, lr", [("cd", 0.5), ("pcd", 0.2)])  # PCD needs the slower rate
def test_a_tiny_rbm_learns_a_known_distribution(algorithm, lr):
    """KL(target || model) falls from > 1 nat to < 0.12 (exact gradient ascent reaches 0.053:
    3 hidden units cannot represent the target exactly)."""
    target = np.full(2 ** N_V, 0.01)
    for pattern, weight in (("1100", 0.35), ("0011", 0.3), ("1111", 0.15), ("0000", 0.06)):
        target[int(pattern, 2)] = weight
    target /= target.sum()
    rng = np.random.default_rng(1)
    data = torch.tensor(STATES_V[rng.choice(2 ** N_V, 2000, p=target)])
    torch.manual_seed(0)
    rbm = RBM(0.1 * torch.randn(N_V, N_H, dtype=torch.float64), torch.zeros(N_V, dtype=torch.float64),
              torch.zeros(N_H, dtype=torch.float64))
    before = kl(target, model_marginal(rbm).numpy())
    velocity = [torch.zeros_like(t) for t in (rbm.W, rbm.b, rbm.c)]
    generator = torch.Generator().manual_seed(0)
    particles = data[:500].clone()
    for epoch in range(60):
        for batch in data[torch.randperm(len(data), generator=generator)].split(100):
            if algorithm == "cd":
                grads = rbm.cd_gradient(batch, 1, generator)
            else:
                grads, particles = rbm.pcd_gradient(batch, particles, 1, generator)
            sgd_update(rbm, grads, velocity, lr=lr, momentum=0.5)
    after = kl(target, model_marginal(rbm).numpy())
    assert before > 1.0 and after < 0.12, (before, after)


def test_gaussian_visible_units_gradient_is_the_free_energy_difference():
    torch.manual_seed(0)
    rbm = RBM(torch.randn(5, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64),
              torch.randn(3, dtype=torch.float64), "gaussian")
    v_data, v_model = torch.randn(7, 5, dtype=torch.float64), torch.randn(9, 5, dtype=torch.float64)
    params = [t.clone().requires_grad_(True) for t in (rbm.W, rbm.b, rbm.c)]
    twin = RBM(*params, visible="gaussian")
    # the seed's estimate is -(dF(v_data) - dF(v_model)), averaged
    objective = -twin.free_energy(v_data).mean() + twin.free_energy(v_model).mean()
    for ours, numeric in zip(rbm.gradient(v_data, v_model), torch.autograd.grad(objective, params)):
        torch.testing.assert_close(ours, numeric)
    samples = rbm.sample_visible(torch.ones(20_000, 3, dtype=torch.float64), torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples.mean(0), rbm.b + rbm.W.sum(1), atol=0.05, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.ones(5, dtype=torch.float64), atol=0.03, rtol=0)
    assert rbm.pseudo_likelihood(v_data) is None


def test_pseudo_likelihood_matches_its_definition_when_all_bits_are_counted(tiny):
    rbm, (W, b, c), data = tiny
    v = torch.tensor(data[:1]).repeat(4000, 1)
    # the exact log PL of one example: sum_i log P(v_i | v_-i) from the enumerated P(v)
    p = np_marginal(W, b, c)
    index = int("".join(str(int(x)) for x in data[0]), 2)
    exact = sum(np.log(p[index] / (p[index] + p[index ^ (1 << (N_V - 1 - i))])) for i in range(N_V))
    assert abs(rbm.pseudo_likelihood(v, torch.Generator().manual_seed(0)) - exact) < 0.05 * abs(exact)


def test_k_schedule():
    assert [k_at({1: 1, 4: 3}, e) for e in range(1, 6)] == [1, 1, 1, 3, 3]
    assert k_at(2, 7) == 2 and k_at({3: 5}, 1) == 1
