"""An additive cost model: a reported cost (latency, size) as the sum of a cost per node.

Hardware-aware NAS estimates latency from a per-operation lookup table (FBNet, ProxylessNAS,
HW-NAS-Bench's FPGA figures): a network costs about what its operations cost. This fits that
table from the trials that reported the cost, as a ridge regression (scikit-learn's) on one-hot
node classes by position, so the graph searcher can screen a sampled architecture against a budget before a
trial is spent on it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.linear_model import Ridge
from torch_geometric.data import Data


class NodeCostModel:
    """Ridge regression of a cost on the class of each node, position by position.

    Args:
        num_node_classes: Node classes of the space.
        max_nodes: Largest node count of the space (shorter graphs leave later positions empty).
        ridge: L2 penalty; keeps the fit stable with fewer reports than features.

    Example:
        >>> from ray_diffnas.spaces.graphs import make_graph
        >>> graphs = [make_graph([0, c, 1], []) for c in (2, 3, 2, 3)]
        >>> model = NodeCostModel(num_node_classes=4, max_nodes=3).fit(graphs, [1.0, 3.0, 1.0, 3.0])
        >>> [round(float(v), 1) for v in model.predict([make_graph([0, 3, 1], [])])]
        [3.0]
    """

    def __init__(self, num_node_classes: int, max_nodes: int, ridge: float = 0.1) -> None:
        if ridge <= 0:
            raise ValueError(f"ridge must be > 0, but got {ridge!r}")
        self.num_node_classes, self.max_nodes, self.ridge = num_node_classes, max_nodes, ridge
        self._ridge: Ridge | None = None
        self.weights: np.ndarray | None = None  # cost of each (position, class), as fitted
        self.intercept = 0.0
        self.reports = 0

    def features(self, graphs: Sequence[Data]) -> np.ndarray:
        """One-hot node classes by position, shape ``(len(graphs), max_nodes * num_node_classes)``."""
        out = np.zeros((len(graphs), self.max_nodes, self.num_node_classes))
        for row, graph in enumerate(graphs):
            classes = graph.x.numpy()
            out[row, np.arange(len(classes)), classes] = 1.0
        return out.reshape(len(graphs), -1)

    def fit(self, graphs: Sequence[Data], costs: Sequence[float]) -> NodeCostModel:
        """Fits the per-node costs to the reported ``costs`` (one per graph); returns self."""
        if len(graphs) != len(costs) or not graphs:
            raise ValueError(f"need one cost per graph and at least one graph, got {len(graphs)} and {len(costs)}")
        # The intercept is fitted, not penalised (scikit-learn centres the features and costs).
        self._ridge = Ridge(alpha=self.ridge, fit_intercept=True).fit(
            self.features(graphs), np.asarray(costs, dtype=float)
        )
        self.weights, self.intercept = self._ridge.coef_, float(self._ridge.intercept_)
        self.reports = len(graphs)
        return self

    def predict(self, graphs: Sequence[Data]) -> np.ndarray:
        """The predicted cost of each graph."""
        if self._ridge is None:
            raise RuntimeError("NodeCostModel.predict before fit")
        return np.asarray(self._ridge.predict(self.features(graphs)))
