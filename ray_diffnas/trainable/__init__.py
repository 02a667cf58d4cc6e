"""Trainable: ``train_diffusion``, the Tune trial of one architecture; its settings; how a failing trial says why."""
