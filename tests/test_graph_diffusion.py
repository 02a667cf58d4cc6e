"""GraphDiffusion: the marginal-preserving forward process, the reverse posterior, conditional
sampling on a toy NAS-Bench-201 table, and save / load."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from ray_diffnas.searchers.graph.diffusion import GraphDiffusion, GraphDiffusionConfig
from ray_diffnas.searchers.graph.transformer import node_pairs
from ray_diffnas.spaces.graphs import make_graph, to_dense
from ray_diffnas.spaces.nb201 import NB201Space

NODE_M = np.array([0.55, 0.25, 0.12, 0.08])  # skewed on purpose: far from uniform
EDGE_M = np.array([0.7, 0.2, 0.1])
SMALL = GraphDiffusionConfig(hidden=32, layers=2, heads=2, timesteps=200, sampling_steps=20, batch_size=64)


@pytest.fixture
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _iid_graphs(count: int, max_nodes: int, rng: np.random.Generator) -> list:
    """Graphs of 3..max_nodes nodes whose node classes and ordered-pair classes are i.i.d. from the marginals."""
    graphs = []
    for _ in range(count):
        n = int(rng.integers(3, max_nodes + 1))
        x = rng.choice(len(NODE_M), n, p=NODE_M)
        edges = [
            (i, j, int(c))
            for i in range(n)
            for j in range(n)
            if i != j
            for c in [rng.choice(len(EDGE_M), p=EDGE_M)]
            if c > 0
        ]
        graphs.append(make_graph(x.tolist(), edges))
    return graphs


def _model(max_nodes: int = 6, config: GraphDiffusionConfig = SMALL, seed: int = 0) -> GraphDiffusion:
    return GraphDiffusion(len(NODE_M), len(EDGE_M), max_nodes, [2], config, seed=seed)


def _pair_mask(mask: torch.Tensor) -> torch.Tensor:
    return mask[:, :, None] & mask[:, None, :] & ~torch.eye(mask.shape[1], dtype=torch.bool)


def _freq(values: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.bincount(values, minlength=classes).float() / values.numel()


# --- the forward process ---------------------------------------------------------------------------


def test_alpha_bar_runs_from_one_to_zero() -> None:
    model = _model()
    T = SMALL.timesteps
    a = model.alpha_bar(torch.arange(T + 1))
    assert a[0] == 1.0 and a[-1] < 1e-6
    assert bool((a[1:] <= a[:-1]).all())


def test_set_marginals_counts_real_nodes_and_ordered_pairs() -> None:
    model = _model(max_nodes=4)
    graphs = [make_graph([0, 1, 1], [(0, 1, 1), (1, 2, 2)]), make_graph([3, 3], [(1, 0, 1)])]
    model.set_marginals(graphs)
    # 5 real nodes (padding ignored); 6 + 2 ordered pairs of distinct real nodes, 3 of them edges
    assert torch.allclose(model.node_marginals, torch.tensor([1, 2, 0, 2]) / 5.0, atol=1e-3)
    assert torch.allclose(model.edge_marginals, torch.tensor([5, 2, 1]) / 8.0, atol=1e-3)
    assert model.node_counts.tolist() == [0, 0, 1, 1, 0]
    assert bool((model.node_marginals > 0).all())  # no class is impossible under the prior


def test_forward_noising_keeps_the_marginals() -> None:
    model = _model()
    graphs = _iid_graphs(1500, model.max_nodes, np.random.default_rng(0))
    model.set_marginals(graphs)
    assert np.abs(model.node_marginals.numpy() - NODE_M).max() < 0.02
    assert np.abs(model.edge_marginals.numpy() - EDGE_M).max() < 0.02
    X, E, mask = to_dense(graphs, model.max_nodes)
    pairs = _pair_mask(mask)
    T = SMALL.timesteps
    for step in (1, T // 10, T // 4, T // 2, 3 * T // 4, T):
        Xt, Et = model.noise(X, E, torch.full((len(graphs),), step))
        node_freq, edge_freq = _freq(Xt[mask], len(NODE_M)), _freq(Et[pairs], len(EDGE_M))
        assert (node_freq - model.node_marginals).abs().max() < 0.025, (step, node_freq)
        assert (edge_freq - model.edge_marginals).abs().max() < 0.015, (step, edge_freq)
    Xt, Et = model.noise(X, E, torch.zeros(len(graphs), dtype=torch.long))
    assert torch.equal(Xt, X) and torch.equal(Et, E)  # t = 0 is the clean graph


def test_prior_at_t_equals_T_is_the_marginal_even_for_one_fixed_graph() -> None:
    model = _model()
    model.set_marginals(_iid_graphs(1500, model.max_nodes, np.random.default_rng(1)))
    copies, n = 3000, model.max_nodes
    # x_0 constant: every node of the rarest class, every ordered pair of the rarest edge class
    graph = make_graph([3] * n, [(i, j, 2) for i in range(n) for j in range(n) if i != j])
    X, E, _ = to_dense([graph] * copies, n)
    Xt, Et = model.noise(X, E, torch.full((copies,), SMALL.timesteps))
    for i in range(n):
        assert (_freq(Xt[:, i], len(NODE_M)) - model.node_marginals).abs().max() < 0.035, i
    for i, j in [(0, 1), (1, 0), (2, 5), (5, 4)]:
        assert (_freq(Et[:, i, j], len(EDGE_M)) - model.edge_marginals).abs().max() < 0.035, (i, j)
    # half-way, the rare class is over-represented at every position: noise starts from x_0
    Xh, _ = model.noise(X, E, torch.full((copies,), SMALL.timesteps // 2))
    assert _freq(Xh.flatten(), len(NODE_M))[3] > model.node_marginals[3] + 0.2


# --- the reverse step ------------------------------------------------------------------------------


def _brute_force_posterior(
    model: GraphDiffusion, x_t: torch.Tensor, p0: torch.Tensor, t: int, s: int, m: torch.Tensor
) -> torch.Tensor:
    """``Σ_c p̂(c) q(x_s | x_t, x_0 = c)`` from explicit transition matrices."""
    K = len(m)
    a_t, a_s = (float(v) for v in model.alpha_bar(torch.tensor([t, s])))
    eye, ones = torch.eye(K, dtype=torch.float64), torch.ones(K, 1, dtype=torch.float64)
    m = m.double()[None]

    def Q_bar(a: float) -> torch.Tensor:  # row: from class, column: to class
        return a * eye + (1 - a) * ones @ m

    Q_ts, Q_s, Q_t = Q_bar(a_t / a_s), Q_bar(a_s), Q_bar(a_t)
    out = torch.zeros(*x_t.shape, K, dtype=torch.float64)
    for idx in np.ndindex(*x_t.shape):
        j = int(x_t[idx])
        for c in range(K):
            q = Q_ts[:, j] * Q_s[c, :] / Q_t[c, j]  # over x_s = k; sums to 1
            out[idx] += p0[idx][c].double() * q
    return out


def test_posterior_rows_are_distributions_and_match_the_exact_formula() -> None:
    model = _model()
    model.set_marginals(_iid_graphs(200, model.max_nodes, np.random.default_rng(2)))
    g = torch.Generator().manual_seed(0)
    x_t = torch.randint(0, len(NODE_M), (4, 6), generator=g)
    p0 = torch.randn(4, 6, len(NODE_M), generator=g).softmax(-1)
    T = SMALL.timesteps
    for t, s in [(T, T - 10), (T // 2, T // 4), (10, 9), (T, 0), (5, 0)]:
        probs = model._posterior(x_t, p0, t, s, model.node_marginals)
        assert probs.shape == (4, 6, len(NODE_M))
        assert bool((probs >= 0).all()) and torch.allclose(probs.sum(-1), torch.ones(4, 6), atol=1e-5)
        exact = _brute_force_posterior(model, x_t, p0, t, s, model.node_marginals)
        assert torch.allclose(probs.double(), exact, atol=1e-4), (t, s)


def test_posterior_at_s_zero_returns_the_predicted_class() -> None:
    model = _model()
    model.set_marginals(_iid_graphs(200, model.max_nodes, np.random.default_rng(3)))
    K = len(EDGE_M)
    x_t = torch.randint(0, K, (5, 6, 6), generator=torch.Generator().manual_seed(1))
    clean = torch.randint(0, K, (5, 6, 6), generator=torch.Generator().manual_seed(2))
    one_hot = torch.nn.functional.one_hot(clean, K).float()
    for t in (1, 50, SMALL.timesteps):
        probs = model._posterior(x_t, one_hot, t, 0, model.edge_marginals)
        assert torch.equal(probs.argmax(-1), clean) and torch.allclose(probs.max(-1).values, torch.ones(5, 6, 6))


# --- conditional sampling on a toy table ---------------------------------------------------------------

CONV = "nor_conv_3x3"


def _convs(arch) -> int:
    return sum(op == CONV for op in arch.ops)


@pytest.fixture(scope="module")
def toy_model() -> tuple[GraphDiffusion, NB201Space]:
    """Trained on a toy table: label 1 = at least 3 of the 6 edges are 3x3 convolutions (about 10 % of
    random cells), plus unlabelled cells with the null condition, as the searcher trains."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        space, rng = NB201Space(), np.random.default_rng(0)
        labelled = [space.sample(rng) for _ in range(200)]
        prior = [space.sample(rng) for _ in range(400)]
        labels = [[int(_convs(a) >= 3)] for a in labelled] + [[2]] * len(prior)  # 2 = no condition
        assert 10 <= sum(y for (y,) in labels[:200]) <= 40
        config = GraphDiffusionConfig(hidden=32, layers=2, heads=2, sampling_steps=20, batch_size=64)
        model = GraphDiffusion(len(space.node_classes), len(space.edge_classes), space.max_nodes, [2], config, seed=0)
        losses = model.fit([space.encode(a) for a in labelled + prior], torch.tensor(labels), steps=400)
    finally:
        torch.set_num_threads(previous)
    assert np.mean(losses[-50:]) < 0.5 * np.mean(losses[:10])
    assert model.steps_trained == 400
    return model, space


@pytest.mark.slow
def test_conditional_samples_shift_toward_the_condition(toy_model, one_thread) -> None:
    model, space = toy_model
    results = {}
    for name, target in {"good": {0: 1}, "bad": {0: 0}, "free": None}.items():
        graphs = model.sample(200, target)
        decoded = [space.decode(g) for g in graphs]
        valid = [a for a in decoded if a is not None]
        results[name] = (len(valid) / len(graphs), float(np.mean([_convs(a) for a in valid])))
    for validity, _ in results.values():
        assert validity >= 0.85, results
    convs = {name: mean for name, (_, mean) in results.items()}
    assert convs["good"] > convs["bad"] + 1.0, results
    assert convs["good"] > convs["free"] + 0.5, results
    assert abs(convs["free"] - 6 / 5) < 0.5, results  # unconditional: like the training cells (mean 1.2)


def test_condition_scores_rank_cells_by_their_label(toy_model, one_thread) -> None:
    model, space = toy_model
    rng = np.random.default_rng(7)
    cells = [space.sample(rng) for _ in range(120)]
    scores = model.condition_scores([space.encode(a) for a in cells], {0: 1})
    assert scores.shape == (120,) and bool(torch.isfinite(scores).all())
    good = [float(s) for s, a in zip(scores, cells) if _convs(a) >= 3]
    bad = [float(s) for s, a in zip(scores, cells) if _convs(a) == 0]
    assert good and bad and np.mean(good) > np.mean(bad) + 1.0, (np.mean(good), np.mean(bad))
    assert model.condition_scores([], {0: 1}).shape == (0,)
    # against the "bad" class rather than no condition, the ranking holds too
    versus_bad = model.condition_scores([space.encode(a) for a in cells], {0: 1}, contrast={0: 0})
    good = [float(s) for s, a in zip(versus_bad, cells) if _convs(a) >= 3]
    bad = [float(s) for s, a in zip(versus_bad, cells) if _convs(a) == 0]
    assert np.mean(good) > np.mean(bad) + 1.0, (np.mean(good), np.mean(bad))


def test_guidance_zero_is_the_unconditional_model(one_thread) -> None:
    space = NB201Space()
    graphs = [space.encode(space.sample(np.random.default_rng(i))) for i in range(64)]
    model = GraphDiffusion(
        len(space.node_classes),
        len(space.edge_classes),
        space.max_nodes,
        [2],
        GraphDiffusionConfig(hidden=16, layers=1, sampling_steps=5, batch_size=16),
    )
    model.fit(graphs, torch.tensor([[i % 2] for i in range(64)]), steps=5)
    X, E, mask = to_dense(graphs[:4], space.max_nodes)
    weighted = model._guided_clean_probs(X, E, mask, 100, {0: 1}, {0: 0.0})
    free = model._guided_clean_probs(X, E, mask, 100, {}, {})
    assert torch.allclose(weighted[0], free[0], atol=1e-5) and torch.allclose(weighted[1], free[1], atol=1e-5)
    conditional = model._guided_clean_probs(X, E, mask, 100, {0: 1}, {0: 1.0})
    assert not torch.allclose(conditional[0], free[0], atol=1e-6)


# --- save / load -------------------------------------------------------------------------------------------


def test_state_dict_round_trip_gives_an_identical_model(one_thread) -> None:
    space = NB201Space()
    graphs = [space.encode(space.sample(np.random.default_rng(i))) for i in range(48)]
    conditions = torch.tensor([[i % 2, (i // 2) % 2] for i in range(48)])
    config = GraphDiffusionConfig(hidden=16, layers=2, sampling_steps=5, batch_size=16)
    trained = GraphDiffusion(len(space.node_classes), len(space.edge_classes), space.max_nodes, [2, 2], config, seed=0)
    trained.fit(graphs, conditions, steps=10)
    state = trained.state_dict()
    assert isinstance(state["tensors"], bytes) and state["steps_trained"] == 10
    blank = GraphDiffusion(
        len(space.node_classes),
        len(space.edge_classes),
        state["max_nodes"],
        state["condition_sizes"],
        GraphDiffusionConfig(**state["config"]),
        seed=123,
    )
    X, E, mask = to_dense(graphs[:6], space.max_nodes)
    t, y = torch.rand(6), torch.tensor([[0, 1], [1, 2], [2, 2], [1, 0], [0, 0], [2, 1]])
    trained.net.eval(), blank.net.eval()
    with torch.no_grad():
        assert not torch.equal(trained.net(X, E, mask, t, y)[0], blank.net(X, E, mask, t, y)[0])
        blank.load_state_dict(state)
        ours, theirs = trained.net(X, E, mask, t, y), blank.net(X, E, mask, t, y)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    assert ours[1].shape[0] == len(node_pairs(mask)[0])
    assert torch.equal(blank.node_marginals, trained.node_marginals)
    assert torch.equal(blank.edge_marginals, trained.edge_marginals)
    assert torch.equal(blank.node_counts, trained.node_counts) and blank.steps_trained == 10
    # the random state rides along: both draw the same graphs, then train on identically
    for a, b in zip(trained.sample(6, {0: 1, 1: 1}), blank.sample(6, {0: 1, 1: 1})):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    assert trained.fit(graphs, conditions, steps=3) == blank.fit(graphs, conditions, steps=3)
