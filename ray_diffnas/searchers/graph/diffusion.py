"""Discrete graph diffusion with marginal transitions and multi-condition classifier-free guidance.

DiGress-style (Vignac et al., ICLR 2023), as DiNAS (Asthana et al., TMLR 2024) uses it for
architectures. Node classes and the class of every *ordered* node pair are noised on their own
(directed graphs are never symmetrised): ``q(x_t | x_0) = x_0 Q̄_t`` with
``Q̄_t = ᾱ_t I + (1 - ᾱ_t) 1 mᵀ`` and ``m`` the class marginals of the training graphs, so the
prior is "a graph drawn from the marginals". A :class:`GraphTransformer` predicts the clean
graph; the reverse step mixes the exact posteriors ``q(x_s | x_t, x_0 = c)`` by that prediction.
Guided logits: ``ℓ_∅ + Σ_i w_i (ℓ_i − ℓ_∅)`` with ``ℓ_i`` computed with only condition ``i`` set.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np  # noqa: F401  (used in the docstring example)
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from ray_diffnas.searchers.graph.transformer import GraphTransformer, node_pairs
from ray_diffnas.spaces.graphs import from_dense, to_dense


@dataclass(frozen=True)
class GraphDiffusionConfig:
    """Sizes and training constants of the model (small defaults: trains in seconds on a CPU)."""

    hidden: int = 32
    layers: int = 3
    heads: int = 2
    timesteps: int = 500
    sampling_steps: int = 25  # strided reverse steps (Q_{t|s} has closed form for any s < t)
    edge_loss_weight: float = 5.0  # edges are the hard part (DiGress uses 5)
    condition_dropout: float = 0.15  # each condition dropped to "null" on its own
    learning_rate: float = 3e-3
    batch_size: int = 64
    greedy_last_step: bool = True  # the last step takes each class's mode: 94 % -> ~100 % valid NB201 cells


class GraphDiffusion:
    """A conditional generative model of graphs with categorical nodes and edges.

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> space = NB201Space()
        >>> graphs = [space.encode(space.sample(np.random.default_rng(i))) for i in range(32)]
        >>> model = GraphDiffusion(len(space.node_classes), len(space.edge_classes), space.max_nodes, [2])
        >>> losses = model.fit(graphs, torch.tensor([[i % 2] for i in range(32)]), steps=5)
        >>> len(model.sample(4, {0: 1}, {0: 2.0}))
        4
    """

    def __init__(
        self,
        num_node_classes: int,
        num_edge_classes: int,
        max_nodes: int,
        condition_sizes: Sequence[int],
        config: GraphDiffusionConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config or GraphDiffusionConfig()
        self.max_nodes = max_nodes
        self.condition_sizes = list(condition_sizes)
        self.generator = torch.Generator().manual_seed(seed)
        c = self.config
        with torch.random.fork_rng():  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(seed)
            self.net = GraphTransformer(
                num_node_classes,
                num_edge_classes,
                max_nodes,
                condition_sizes,
                hidden=c.hidden,
                layers=c.layers,
                heads=c.heads,
            )
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=c.learning_rate, weight_decay=1e-4)
        self.node_marginals = torch.full((num_node_classes,), 1.0 / num_node_classes)
        self.edge_marginals = torch.full((num_edge_classes,), 1.0 / num_edge_classes)
        self.node_counts = torch.zeros(max_nodes + 1)  # how often each node count occurs in training graphs
        self.steps_trained = 0

    # --- the forward process ----------------------------------------------------------------

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """Cosine schedule ``ᾱ_t`` for integer steps ``t`` in [0, T]; ``ᾱ_0 = 1``."""
        s, T = 0.008, self.config.timesteps
        f = torch.cos((t.double() / T + s) / (1 + s) * math.pi / 2) ** 2
        return (f / math.cos(s / (1 + s) * math.pi / 2) ** 2).clamp(0.0, 1.0).float()

    def noise(self, X: torch.Tensor, E: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws ``x_t ~ x_0 Q̄_t``: keep each class with probability ᾱ_t, else redraw it from the marginal."""
        a = self.alpha_bar(t)
        probs_X = (
            a[:, None, None] * F.one_hot(X, len(self.node_marginals)) + (1 - a[:, None, None]) * self.node_marginals
        )
        probs_E = (
            a[:, None, None, None] * F.one_hot(E, len(self.edge_marginals))
            + (1 - a[:, None, None, None]) * self.edge_marginals
        )
        return _draw(probs_X, self.generator), _draw(probs_E, self.generator)

    def set_marginals(self, graphs: Sequence[Data]) -> None:
        X, E, mask = to_dense(graphs, self.max_nodes)
        pairs = _pair_mask(mask)
        self.node_marginals = _frequencies(X[mask], len(self.node_marginals))
        self.edge_marginals = _frequencies(E[pairs], len(self.edge_marginals))
        self.node_counts = torch.bincount(mask.sum(1), minlength=self.max_nodes + 1).float()

    # --- training -------------------------------------------------------------------------------

    def fit(
        self, graphs: Sequence[Data], conditions: torch.Tensor, steps: int, weights: torch.Tensor | None = None
    ) -> list[float]:
        """Trains (or goes on training) on graphs with their condition indices (null = size).

        Args:
            graphs: Training graphs.
            conditions: (len(graphs), K) condition class per graph; ``condition_sizes[k]`` = unknown.
            steps: Optimizer steps.
            weights: Optional sampling weight per graph (e.g. to balance labelled and unlabelled).

        Returns:
            The loss of each step.
        """
        if self.steps_trained == 0:
            self.set_marginals(graphs)
        X_all, E_all, mask_all = to_dense(graphs, self.max_nodes)
        conditions = conditions.long()
        weights = torch.ones(len(graphs)) if weights is None else weights.float()
        c, losses = self.config, []
        self.net.train()
        for _ in range(steps):
            idx = torch.multinomial(weights, c.batch_size, replacement=True, generator=self.generator)
            X0, E0, mask, y = X_all[idx], E_all[idx], mask_all[idx], conditions[idx].clone()
            drop = torch.rand(y.shape, generator=self.generator) < c.condition_dropout
            y[drop] = torch.tensor(self.condition_sizes).expand_as(y)[drop]
            t = torch.randint(1, c.timesteps + 1, (len(idx),), generator=self.generator)
            Xt, Et = self.noise(X0, E0, t)
            node_logits, pair_logits = self.net(Xt, Et, mask, t.float() / c.timesteps, y)
            loss = F.cross_entropy(node_logits[mask], X0[mask]) + c.edge_loss_weight * F.cross_entropy(
                pair_logits, E0[node_pairs(mask)]
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            self.optimizer.step()
            losses.append(loss.item())
        self.steps_trained += steps
        return losses

    # --- sampling -------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        count: int,
        target: Mapping[int, int] | None = None,
        guidance: Mapping[int, float] | None = None,
        node_counts: torch.Tensor | None = None,
    ) -> list[Data]:
        """Generates ``count`` graphs.

        Args:
            count: Number of graphs.
            target: Condition index -> class to ask for (e.g. ``{0: 1}``: quality class 1).
            guidance: Condition index -> guidance weight ``w_i`` (default 1.0 for each target);
                ``w = 1`` is the plain conditional model, ``w > 1`` pushes harder.
            node_counts: Weights over node counts to draw sizes from (default: the training graphs').
        """
        target = dict(target or {})
        weights = {k: float((guidance or {}).get(k, 1.0)) for k in target}
        self.net.eval()
        c = self.config
        counts = (self.node_counts if node_counts is None else node_counts).float()
        n = torch.multinomial(counts, count, replacement=True, generator=self.generator)
        mask = torch.arange(self.max_nodes)[None] < n[:, None]
        X = _draw(self.node_marginals.expand(count, self.max_nodes, -1), self.generator)
        E = _draw(self.edge_marginals.expand(count, self.max_nodes, self.max_nodes, -1), self.generator)
        times = torch.linspace(c.timesteps, 0, c.sampling_steps + 1).round().long()
        for t, s in zip(times[:-1].tolist(), times[1:].tolist()):
            p_X, p_E = self._guided_clean_probs(X, E, mask, t, target, weights)
            if s == 0 and c.greedy_last_step:
                # At s = 0 the posterior is the predicted clean distribution itself; its mode drops the
                # low-probability slips (a wrong class at one position) that make a graph invalid.
                X, E = p_X.argmax(-1), p_E.argmax(-1)
                break
            X = _draw(self._posterior(X, p_X, t, s, self.node_marginals), self.generator)
            E = _draw(self._posterior(E, p_E, t, s, self.edge_marginals), self.generator)
        E = E * _pair_mask(mask)  # padded nodes and self-pairs carry no edge
        X = X * mask
        return from_dense(X, E, mask)

    @torch.no_grad()
    def condition_scores(
        self,
        graphs: Sequence[Data],
        target: Mapping[int, int],
        guidance: Mapping[int, float] | None = None,
        contrast: Mapping[int, int] | None = None,
        noise_levels: Sequence[float] = (0.25, 0.5, 0.75),
        per_condition: bool = False,
    ) -> torch.Tensor:
        """How much better each graph fits its target conditions than the contrast: the model as a classifier.

        ``Σ_i w_i (log p̂(G | G_t, y_i = target) − log p̂(G | G_t, y_i = contrast))``, averaged over
        a few noise levels; the contrast of a condition is another class of it, or "no condition"
        when ``contrast`` leaves it out. By Bayes this is ``log p(y_i | G)`` up to a constant (the
        implicit classifier of classifier-free guidance); against the "bad" class it ranks like
        TPE's ``l(x) / g(x)``. With ``per_condition`` the unweighted terms come back, one column
        per target condition (shape ``(len(graphs), len(target))``).
        """
        if not graphs:
            return torch.zeros(0, len(target)) if per_condition else torch.zeros(0)
        self.net.eval()
        X0, E0, mask = to_dense(graphs, self.max_nodes)
        B = X0.shape[0]
        sets: list[torch.Tensor] = []
        pairs: list[tuple[int, int, int]] = []  # (condition, its set, its contrast set)
        for k, value in target.items():
            y_target, y_contrast = self.net.null_conditions(B), self.net.null_conditions(B)
            y_target[:, k] = value
            if contrast is not None and k in contrast:
                y_contrast[:, k] = contrast[k]
            pairs.append((k, len(sets), len(sets) + 1))
            sets += [y_target, y_contrast]
        reps, mask_all = len(sets), mask.repeat(len(sets), 1)
        pair_b, pair_i, pair_j = node_pairs(mask_all)
        X_all, E_all = X0.repeat(reps, 1), E0.repeat(reps, 1, 1)
        scores = torch.zeros(B, len(pairs))
        for level in noise_levels:
            t = torch.full((B,), max(1, round(level * self.config.timesteps)))
            Xt, Et = self.noise(X0, E0, t)
            node_logits, pair_logits = self.net(
                Xt.repeat(reps, 1),
                Et.repeat(reps, 1, 1),
                mask_all,
                t.float().repeat(reps) / self.config.timesteps,
                torch.cat(sets),
            )
            node_ll = (F.log_softmax(node_logits, -1).gather(-1, X_all[..., None])[..., 0] * mask_all).sum(1)
            pair_ll = F.log_softmax(pair_logits, -1).gather(-1, E_all[pair_b, pair_i, pair_j][:, None])[:, 0]
            ll = (node_ll + torch.zeros(reps * B).index_add_(0, pair_b, pair_ll)).view(reps, B)
            for column, (_, i_target, i_contrast) in enumerate(pairs):
                scores[:, column] += ll[i_target] - ll[i_contrast]
        scores /= len(noise_levels)
        if per_condition:
            return scores
        weights = torch.tensor([float((guidance or {}).get(k, 1.0)) for k, _, _ in pairs])
        return scores @ weights

    def _guided_clean_probs(
        self,
        X: torch.Tensor,
        E: torch.Tensor,
        mask: torch.Tensor,
        t: int,
        target: Mapping[int, int],
        weights: Mapping[int, float],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``softmax(ℓ_∅ + Σ w_i (ℓ_i − ℓ_∅))`` from one batched forward pass over 1 + K condition sets."""
        B = X.shape[0]
        sets = [self.net.null_conditions(B)]
        for k, value in target.items():
            y = self.net.null_conditions(B)
            y[:, k] = value
            sets.append(y)
        reps = len(sets)
        time = torch.full((B * reps,), t / self.config.timesteps)
        mask_all = mask.repeat(reps, 1)
        node_logits, pair_logits = self.net(X.repeat(reps, 1), E.repeat(reps, 1, 1), mask_all, time, torch.cat(sets))
        edge_logits = torch.zeros(*E.shape, pair_logits.shape[-1]).repeat(reps, 1, 1, 1)
        edge_logits[node_pairs(mask_all)] = pair_logits
        node_logp = F.log_softmax(node_logits, -1).split(B)
        edge_logp = F.log_softmax(edge_logits, -1).split(B)
        guided_X, guided_E = node_logp[0].clone(), edge_logp[0].clone()
        for i, k in enumerate(target, start=1):
            guided_X += weights[k] * (node_logp[i] - node_logp[0])
            guided_E += weights[k] * (edge_logp[i] - edge_logp[0])
        return guided_X.softmax(-1), guided_E.softmax(-1)

    def _posterior(self, x_t: torch.Tensor, p0: torch.Tensor, t: int, s: int, m: torch.Tensor) -> torch.Tensor:
        """``p(x_s | x_t) = Σ_c q(x_s | x_t, x_0 = c) p̂(c)`` for marginal transitions, in closed form."""
        a_t, a_s = (float(v) for v in self.alpha_bar(torch.tensor([t, s])))
        a_ts = a_t / max(a_s, 1e-12)
        onehot = F.one_hot(x_t, len(m)).float()
        m_j = (onehot * m).sum(-1, keepdim=True)  # marginal of the current class
        likelihood = a_ts * onehot + (1 - a_ts) * m_j  # q(x_t | x_s = k), over k
        evidence = a_t * onehot + (1 - a_t) * m_j  # q(x_t | x_0 = c), over c
        w = p0 / evidence.clamp_min(1e-12)
        prior = a_s * w + (1 - a_s) * m * w.sum(-1, keepdim=True)  # Σ_c w_c q(x_s = k | x_0 = c)
        probs = likelihood * prior
        return probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)

    # --- save / load ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        buffer = io.BytesIO()
        torch.save(
            {
                "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "node_marginals": self.node_marginals,
                "edge_marginals": self.edge_marginals,
                "node_counts": self.node_counts,
                "generator": self.generator.get_state(),
            },
            buffer,
        )
        return {
            "config": asdict(self.config),
            "condition_sizes": self.condition_sizes,
            "max_nodes": self.max_nodes,
            "steps_trained": self.steps_trained,
            "tensors": buffer.getvalue(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        tensors = torch.load(io.BytesIO(state["tensors"]), weights_only=True)  # never unpickle user files
        self.net.load_state_dict(tensors["net"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.node_marginals, self.edge_marginals = tensors["node_marginals"], tensors["edge_marginals"]
        self.node_counts = tensors["node_counts"]
        self.generator.set_state(tensors["generator"])
        self.steps_trained = int(state["steps_trained"])


def _draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One categorical draw per row of the last dimension."""
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def _pair_mask(mask: torch.Tensor) -> torch.Tensor:
    N = mask.shape[1]
    return mask[:, :, None] & mask[:, None, :] & ~torch.eye(N, dtype=torch.bool)


def _frequencies(values: torch.Tensor, classes: int) -> torch.Tensor:
    counts = torch.bincount(values, minlength=classes).float() + 1e-3  # no class is impossible under the prior
    return counts / counts.sum()
