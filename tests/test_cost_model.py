"""NodeCostModel: an additive per-node cost table fitted to reported costs (latency lookup tables)."""

from __future__ import annotations

import numpy as np
import pytest

from ray_diffnas.searchers.graph.cost_model import NodeCostModel
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.unet_space import UNetSpace


def test_recovers_an_additive_cost_table_and_predicts_unseen_architectures() -> None:
    space, rng = NB201Space(), np.random.default_rng(0)
    table = rng.uniform(0.0, 1.0, size=(space.max_nodes, len(space.node_classes)))  # cost of class c at node i
    graphs = [space.encode(space.sample(rng)) for _ in range(400)]

    def cost(graph) -> float:
        return float(table[np.arange(graph.num_nodes), graph.x.numpy()].sum())

    model = NodeCostModel(len(space.node_classes), space.max_nodes).fit(graphs[:300], [cost(g) for g in graphs[:300]])
    errors = model.predict(graphs[300:]) - np.array([cost(g) for g in graphs[300:]])
    assert model.reports == 300
    assert np.abs(errors).max() < 0.05  # costs range over about 3


def test_graphs_of_different_sizes_share_one_feature_layout() -> None:
    space, rng = UNetSpace(image_size=16), np.random.default_rng(1)
    graphs = [space.encode(space.sample(rng)) for _ in range(40)]
    assert len({int(g.num_nodes) for g in graphs}) > 1  # levels vary, so node counts do
    model = NodeCostModel(len(space.node_classes), space.max_nodes)
    features = model.features(graphs)
    assert features.shape == (40, space.max_nodes * len(space.node_classes))
    assert np.array_equal(features.sum(1), [g.num_nodes for g in graphs])  # one class per real node
    sizes = [float(g.num_nodes) for g in graphs]
    assert np.allclose(model.fit(graphs, sizes).predict(graphs), sizes, atol=0.1)


def test_misuse_raises() -> None:
    space = NB201Space()
    graphs = [space.encode(space.sample(np.random.default_rng(0)))]
    model = NodeCostModel(len(space.node_classes), space.max_nodes)
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict(graphs)
    with pytest.raises(ValueError, match="one cost per graph"):
        model.fit(graphs, [1.0, 2.0])
    with pytest.raises(ValueError, match="ridge must be > 0"):
        NodeCostModel(3, 4, ridge=0.0)
