"""The graph diffusion searcher (DiNAS): ``GraphDiffusionSearcher``, the discrete graph diffusion model, its
graph transformer, and the additive cost model that screens proposals against constraints."""
