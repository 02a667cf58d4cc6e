"""ArchDomain: a whole architecture as one value of a Tune search space."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.tune.search.sample import Domain, Sampler, _BackwardsCompatibleNumpyRng

from ray_diffnas.errors import ConfigError


class ArchDomain(Domain):
    """A Tune search-space domain whose values are whole architectures of a space
    (:class:`UNetSpace`, :class:`~ray_diffnas.spaces.nb201.NB201Space`: anything with ``sample`` and ``validate``).

    One domain, not one per field: fields depend on each other (the level count sets the lengths
    of ``channel_mult`` and ``num_res_blocks``). Tune's random search samples it with its own
    seeded random state; project searchers find the space here and propose values themselves.
    """

    def __init__(self, space: Any) -> None:
        self.space = space
        self.sampler: Sampler = _ArchDomainSampler()  # type: ignore[assignment]  # Tune declares it None

    def is_valid(self, value: Any) -> bool:
        try:
            self.space.validate(value)
        except ConfigError:
            return False
        return True

    @property
    def domain_str(self) -> str:
        return repr(self.space)


class _ArchDomainSampler(Sampler):
    def sample(self, domain: Domain, config: Any = None, size: int = 1, random_state: Any = None) -> Any:
        assert isinstance(domain, ArchDomain)
        if not isinstance(random_state, _BackwardsCompatibleNumpyRng):
            random_state = _BackwardsCompatibleNumpyRng(random_state)
        seeds = random_state.integers(0, 2**31 - 1, size=size)
        archs = [domain.space.sample(np.random.default_rng(int(seed))).to_dict() for seed in seeds]
        return archs if size > 1 else archs[0]
