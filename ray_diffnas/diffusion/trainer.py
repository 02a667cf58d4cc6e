"""DiffusionTrainer: one UNet, its EMA and optimizer, trained with the rapid-convergence recipe."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from ray_diffnas.data.datasets import ImageDataset
from ray_diffnas.diffusion.recipe import EMA, lr_factor, make_optimizer
from ray_diffnas.diffusion.schedule import ddim_sample, diffusion_loss
from ray_diffnas.errors import TrainingDivergedError
from ray_diffnas.model.unet import UNet
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.settings import TrainingSettings

# Host syncs are slow on a GPU: check the loss for NaN every this many steps, not every step.
FINITE_CHECK_EVERY = 25
SAMPLE_BATCH = 250


def default_device() -> torch.device:
    """The GPU when this process may use one (Tune hides GPUs from trials it gave none)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class DiffusionTrainer:
    """Trains a UNet denoiser on a data set and samples from its EMA.

    Example:
        >>> from ray_diffnas.data.datasets import load_dataset
        >>> data = load_dataset("digits")
        >>> arch = UNetArch(base_channels=8, channel_mult=(1, 2), num_res_blocks=(1, 1),
        ...                 attention_resolutions=())
        >>> trainer = DiffusionTrainer(arch, data, TrainingSettings(dataset="digits", batch_size=16))
        >>> loss = trainer.train_steps(3)
        >>> trainer.step, trainer.sample(4, steps=2).shape
        (3, torch.Size([4, 1, 8, 8]))
    """

    def __init__(
        self, arch: UNetArch, data: ImageDataset, settings: TrainingSettings, device: torch.device | None = None
    ) -> None:
        self.arch, self.data, self.settings = arch, data, settings
        self.device = device or default_device()
        # The trial's own stream of torch's global RNG (weight init, dropout): seeded here, used only
        # inside rng_scope(), so that a trainer neither depends on nor disturbs the caller's RNG.
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.random.default_generator.manual_seed(settings.seed)
            if self.device.type == "cuda":
                torch.cuda.manual_seed(settings.seed)
            # Channels-last on every device: tensor cores want NHWC on CUDA, and one layout keeps the CPU
            # path the same code (on the CPU, benchmarks.throughput measures the result end to end).
            self.model = UNet(arch, data.image_size, data.channels).to(  # type: ignore[call-overload]  # stubs lack memory_format
                self.device, memory_format=torch.channels_last
            )
            self._rng_state = self._get_rng_state()
        # torch.compile wraps the module and shares its weights: the optimizer, EMA and checkpoints
        # keep using the plain self.model (no "_orig_mod." prefix in saved state).
        self.train_model = torch.compile(self.model) if settings.torch_compile else self.model
        self.ema = EMA(self.model, settings.ema_decay)
        self.optimizer = make_optimizer(self.model, settings.lr, settings.weight_decay, self.device)
        self.step = 0
        self.cpu_seconds = 0.0  # CPU time the trial spent on this model, kept across checkpoints
        self.index_generator = torch.Generator().manual_seed(settings.seed)
        self.noise_generator = torch.Generator(self.device).manual_seed(settings.seed + 1)

    def _rng_devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []

    def _get_rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self._rng_devices()[0])
        return state

    @contextlib.contextmanager
    def rng_scope(self) -> Iterator[None]:
        """Runs the block on this trainer's own stream of torch's global RNG (dropout draws from it),
        and leaves the caller's RNG as it was."""
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.set_rng_state(self._rng_state["cpu"])
            if "cuda" in self._rng_state:
                torch.cuda.set_rng_state(self._rng_state["cuda"], self._rng_devices()[0])
            yield
            self._rng_state = self._get_rng_state()

    @property
    def images_seen(self) -> int:
        return self.step * self.settings.batch_size

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _batches(self, count: int) -> Iterator[torch.Tensor]:
        size = self.settings.batch_size
        for _ in range(count):
            index = torch.randint(len(self.data.images), (size,), generator=self.index_generator)
            batch = self.data.batch(index).to(self.device, non_blocking=True)
            yield batch.contiguous(memory_format=torch.channels_last)

    def train_steps(self, count: int) -> float:
        """Runs ``count`` optimizer steps; returns their mean loss.

        Raises:
            TrainingDivergedError: when the loss becomes NaN or infinite.
            ValueError: when ``count`` is not positive (there would be no mean loss).
        """
        if count < 1:
            raise ValueError(f"train_steps needs a positive step count, but got {count}.")
        with self.rng_scope():
            return self._train_steps(count)

    def _train_steps(self, count: int) -> float:
        s = self.settings
        self.model.train()
        total = torch.zeros((), device=self.device)
        for done, x0 in enumerate(self._batches(count), start=1):
            for group in self.optimizer.param_groups:
                group["lr"] = s.lr * lr_factor(self.step, s.warmup_steps, s.total_steps)
            with self._autocast():
                loss = self.loss(x0)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.ema.update(self.model, self.step)
            self.step += 1
            total += loss.detach()
            if done % FINITE_CHECK_EVERY == 0 or done == count:
                self._check_finite(total)
        return float(total) / count

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch: Min-SNR-gamma weighted v-prediction."""
        return diffusion_loss(self.train_model, x0, self.settings.min_snr_gamma, self.noise_generator)

    def _check_finite(self, total: torch.Tensor) -> None:
        if not torch.isfinite(total):
            raise TrainingDivergedError(
                f"The training loss became {float(total)} by step {self.step} (lr={self.settings.lr}, "
                f"architecture {self.arch.key()}); lower 'lr' or raise 'warmup_steps'."
            )

    @torch.no_grad()
    def sample(self, count: int, steps: int, seed: int = 0, ema: bool = True) -> torch.Tensor:
        """``count`` images in [-1, 1] by DDIM from the EMA model (or, ``ema=False``, the trained
        weights themselves); the same seed gives the same noise."""
        generator = torch.Generator(self.device).manual_seed(seed)
        shape = (self.data.channels, self.data.image_size, self.data.image_size)
        model = self.ema.model if ema else self.model.eval()
        out = []
        with self._autocast():
            for start in range(0, count, SAMPLE_BATCH):
                n = min(SAMPLE_BATCH, count - start)
                out.append(self.sampler(model, (n, *shape), steps, generator).cpu())
        return torch.cat(out)

    def sampler(
        self, model: torch.nn.Module, shape: tuple[int, ...], steps: int, generator: torch.Generator
    ) -> torch.Tensor:
        """One batch of deterministic DDIM for the v-predicting denoiser."""
        return ddim_sample(model, shape, steps, self.device, generator)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "cpu_seconds": self.cpu_seconds,
            "index_rng": self.index_generator.get_state(),
            "noise_rng": self.noise_generator.get_state(),
            "noise_rng_device": self.device.type,
            "global_rng": self._rng_state["cpu"],
            **({"global_rng_cuda": self._rng_state["cuda"]} if "cuda" in self._rng_state else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Loads a state saved on any device (tensors may arrive on the CPU)."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
        self.step = int(state["step"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))  # checkpoints before 2026-12 lack it
        self.index_generator.set_state(state["index_rng"].cpu())
        # A CUDA generator's state does not fit a CPU generator (and back): resume it only on the
        # same kind of device; elsewhere the noise continues from a fresh seed.
        if state.get("noise_rng_device", "cpu") == self.device.type:
            self.noise_generator.set_state(state["noise_rng"].cpu())
        if "global_rng" in state:  # dropout goes on where it stopped (checkpoints before 2026-12 lack it)
            self._rng_state["cpu"] = state["global_rng"].cpu()
        if "global_rng_cuda" in state and "cuda" in self._rng_state:  # on a GPU, dropout draws from CUDA's
            self._rng_state["cuda"] = state["global_rng_cuda"].cpu()
