"""Diffusion: the noise schedule, loss and DDIM sampler, the rapid-convergence recipe, and the trainer."""
