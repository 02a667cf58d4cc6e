"""Model: the UNet denoiser built from a ``UNetArch``, and its cost figures (parameters, FLOPs, latency)."""
