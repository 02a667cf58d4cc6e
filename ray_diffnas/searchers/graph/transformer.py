"""The denoiser of the graph diffusion model: a graph transformer over every ordered node pair.

Built on ``torch_geometric.nn.TransformerConv``: node states attend to every other node of their
graph, with the pair's (noisy) edge classes in both directions as edge features, so a DAG's
direction is seen. Pair states are updated from their two nodes after each layer and give the
edge predictions. Time and each condition enter as one global vector added at every layer.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import TransformerConv

from ray_diffnas.model.embedding import sinusoidal_embedding


class GraphTransformer(nn.Module):
    """Predicts the clean node and edge classes of a noisy, padded batch of graphs.

    Each condition ``i`` has ``condition_sizes[i]`` classes plus a learned "null" class (index
    ``condition_sizes[i]``), so any condition can be left out (classifier-free guidance).

    Example:
        >>> net = GraphTransformer(num_node_classes=7, num_edge_classes=2, max_nodes=8, condition_sizes=[2, 2])
        >>> X, E = torch.zeros(3, 8, dtype=torch.long), torch.zeros(3, 8, 8, dtype=torch.long)
        >>> mask = torch.ones(3, 8, dtype=torch.bool)
        >>> node_logits, pair_logits = net(X, E, mask, torch.rand(3), torch.tensor([[1, 2]] * 3))
        >>> tuple(node_logits.shape), tuple(pair_logits.shape)  # 3 graphs x 8 * 7 ordered pairs
        ((3, 8, 7), (168, 2))
    """

    def __init__(
        self,
        num_node_classes: int,
        num_edge_classes: int,
        max_nodes: int,
        condition_sizes: Sequence[int],
        hidden: int = 64,
        layers: int = 3,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.num_node_classes, self.num_edge_classes = num_node_classes, num_edge_classes
        self.condition_sizes = list(condition_sizes)
        self.hidden = hidden
        self.node_embed = nn.Embedding(num_node_classes, hidden)
        # Nodes come in a canonical (topological) order: a node knows its place from both ends
        # and the graph's size (e.g. "the last node is the head").
        self.position_embed = nn.Embedding(max_nodes, hidden)
        self.position_from_end_embed = nn.Embedding(max_nodes, hidden)
        self.size_embed = nn.Embedding(max_nodes + 1, hidden)
        self.edge_out_embed = nn.Embedding(num_edge_classes, hidden)  # class of i -> j
        self.edge_in_embed = nn.Embedding(num_edge_classes, hidden)  # class of j -> i
        self.condition_embeds = nn.ModuleList(nn.Embedding(size + 1, hidden) for size in self.condition_sizes)
        self.time_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.global_proj = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.attn_norm = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.attn = nn.ModuleList(
            TransformerConv(hidden, hidden // heads, heads=heads, edge_dim=hidden, root_weight=False)
            for _ in range(layers)
        )
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))
            for _ in range(layers)
        )
        # Pair update from (source, target, pair): the node terms are projected per node, then gathered,
        # which is far cheaper than a linear layer over every concatenated pair.
        self.edge_from_source = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.edge_from_target = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.edge_update = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.node_head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, num_node_classes))
        self.edge_head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, num_edge_classes))

    def null_conditions(self, batch: int) -> torch.Tensor:
        """Condition indices meaning "no condition" for every condition."""
        return torch.tensor(self.condition_sizes, dtype=torch.long).expand(batch, -1).clone()

    def forward(
        self, X: torch.Tensor, E: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, conditions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            X: Noisy node classes (B, N). E: noisy edge classes (B, N, N), ``E[b, i, j]`` for i -> j.
            mask: Real nodes (B, N). t: Diffusion times in [0, 1] (B,). conditions: (B, K) indices.

        Returns:
            Node logits (B, N, a) and the edge logits (P, b) of the P ordered pairs of distinct
            real nodes, in the order of :func:`node_pairs`, for the clean graph.
        """
        B, N = X.shape
        pair_b, pair_i, pair_j = node_pairs(mask)
        flat_i, flat_j = pair_b * N + pair_i, pair_b * N + pair_j
        edge_index = torch.stack([flat_i, flat_j])  # messages flow i -> j over every ordered pair
        # t in [0, 1]: spread it over many periods
        g = self.time_mlp(sinusoidal_embedding(t, self.hidden, max_period=1000.0, scale=100.0))
        for k, embed in enumerate(self.condition_embeds):
            g = g + embed(conditions[:, k])
        sizes = mask.sum(1)
        g = g + self.size_embed(sizes)
        positions = torch.arange(N, device=X.device)[None].expand(B, N)
        from_end = (sizes[:, None] - 1 - positions).clamp_min(0)
        h = self.node_embed(X) + self.position_embed(positions) + self.position_from_end_embed(from_end)
        h = h.reshape(B * N, self.hidden)
        e = self.edge_out_embed(E[pair_b, pair_i, pair_j]) + self.edge_in_embed(E[pair_b, pair_j, pair_i])
        g_nodes = g.repeat_interleave(N, dim=0)
        for layer in range(len(self.attn)):
            h = h + self.global_proj[layer](g_nodes)
            h = h + self.attn[layer](self.attn_norm[layer](h), edge_index, e)
            h = h + self.ffn[layer](h)
            mixed = self.edge_from_source[layer](h)[flat_i] + self.edge_from_target[layer](h)[flat_j] + e
            e = e + self.edge_update[layer](F.silu(mixed))
        return self.node_head(h).reshape(B, N, -1), self.edge_head(e)


def node_pairs(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch, i, j) of every ordered pair of distinct real nodes."""
    N = mask.shape[1]
    pair_mask = mask[:, :, None] & mask[:, None, :] & ~torch.eye(N, dtype=torch.bool, device=mask.device)
    batch, i, j = pair_mask.nonzero(as_tuple=True)
    return batch, i, j
