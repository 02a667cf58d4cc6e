"""Training-step throughput of our UNet (as a trial trains it) against diffusers' UNet2DModel.

Both denoisers are the same architecture (levels, channels, residual blocks, attention levels,
mid-block attention, GroupNorm groups, scale-shift time conditioning, attention head size), see
the same batches, and train with AdamW at the same learning rate on the same min-SNR v-prediction
loss. Our side is ``DiffusionTrainer.train_steps`` itself (data sampling, loss, backward, AdamW,
learning-rate schedule and EMA update: everything a trial's step does); diffusers' side is the
same loop without the EMA, with ``model(x, t * 1000).sample`` as the denoiser and AdamW built as a
user would (``torch.optim.AdamW(params, lr=...)``, its default implementation). The two are timed
alternately (warm-up, then rounds of ``--steps`` steps of each) so that load from other processes
hits both alike; the table gives median images/s, their ratio, and the FLOP/s each achieves (FLOPs
of forward + backward counted by ``torch.utils.flop_counter``) against a large fp32 ``torch.mm``.
One torch thread by default: Ray sets a trial's OMP_NUM_THREADS to its CPUs (``--cpus-per-trial``,
default 1). "(CPU time)" is the ratio of process CPU seconds per step, the steadier figure where
other jobs share the CPU (with one thread; with more it also counts threads spinning in waits).

Where the time goes: a torch.profiler pass over each eager step splits it by op kind (convolution,
GroupNorm + SiLU, attention, optimizer + EMA, other); with the convolutions' FLOPs that gives the
FLOP/s the convolutions reach, and an upper bound on the ratio that no work outside the convolutions
can beat (diffusers' step against our convolutions alone). ``--compile`` also times both models
through ``torch.compile`` (ours by the trial setting ``torch_compile``), with the compile time and
the steps it takes to pay back.

    python -m benchmarks.throughput [--configs mnist16 cifar32] [--rounds 5] [--steps 3]
        [--warmup 2] [--threads 1] [--compile] [--output benchmarks/results/throughput.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.report import report
from ray_diffnas.data.datasets import ImageDataset
from ray_diffnas.diffusion.recipe import lr_factor
from ray_diffnas.diffusion.schedule import diffusion_loss
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.model.cost import count_params
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.settings import TrainingSettings

PARAM_TOLERANCE = 0.05  # the two models must agree on their parameter count within this fraction
SYNTHETIC_IMAGES = 1024


@dataclass(frozen=True)
class Config:
    """One benchmarked setting: an architecture on images of one size."""

    arch: UNetArch
    image_size: int
    channels: int
    batch_size: int


CONFIGS = {
    # A typical trial on MNIST-sized input: attention at the 4 px level and in the bottleneck.
    "mnist16": Config(
        UNetArch(
            base_channels=32,
            channel_mult=(1, 2, 2),
            num_res_blocks=(2, 2, 2),
            attention_resolutions=(4,),
            num_heads=4,
            mid_attention=True,
        ),
        16,
        1,
        32,
    ),
    # CIFAR-sized: attention at 8 px and in the bottleneck.
    "cifar32": Config(
        UNetArch(
            base_channels=32,
            channel_mult=(1, 2, 2),
            num_res_blocks=(2, 2, 2),
            attention_resolutions=(8,),
            num_heads=4,
            mid_attention=True,
        ),
        32,
        3,
        32,
    ),
}


def synthetic_data(config: Config) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    shape = (SYNTHETIC_IMAGES, config.channels, config.image_size, config.image_size)
    return ImageDataset("synthetic", torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator), None)


def diffusers_unet(config: Config) -> nn.Module:
    """``diffusers.UNet2DModel`` configured to the architecture of ``config.arch``."""
    from diffusers import UNet2DModel

    arch = config.arch
    if len(set(arch.num_res_blocks)) != 1:
        raise ValueError(
            f"UNet2DModel has one layers_per_block; the arch must have equal blocks per level, "
            f"but got {arch.num_res_blocks}."
        )
    channels = arch.channels()
    attention = [size in arch.attention_resolutions for size in arch.resolutions(config.image_size)]
    head_dims = {c // arch.num_heads for c, a in zip(channels, attention) if a}
    if arch.mid_attention:
        head_dims.add(channels[-1] // arch.num_heads)
    if len(head_dims) > 1:
        raise ValueError(f"UNet2DModel has one attention head size; this arch needs {sorted(head_dims)}.")
    return UNet2DModel(
        sample_size=config.image_size,
        in_channels=config.channels,
        out_channels=config.channels,
        block_out_channels=tuple(channels),
        layers_per_block=arch.num_res_blocks[0],
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        add_attention=arch.mid_attention,
        attention_head_dim=head_dims.pop() if head_dims else None,
        norm_num_groups=8,
        attn_norm_num_groups=8,  # ours normalises the mid attention too
        resnet_time_scale_shift="scale_shift",
        time_embedding_type="positional",
        dropout=arch.dropout,
    )


class DiffusersStep:
    """The training step a diffusers user writes: same data, loss, AdamW and lr schedule; no EMA."""

    def __init__(self, model: nn.Module, data: ImageDataset, settings: TrainingSettings) -> None:
        self.model, self.data, self.settings = model, data, settings
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.lr, betas=(0.9, 0.99), weight_decay=settings.weight_decay
        )
        self.index_generator = torch.Generator().manual_seed(settings.seed)
        self.noise_generator = torch.Generator().manual_seed(settings.seed + 1)
        self.step = 0

    def denoise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model(x, t * 1000).sample  # diffusers counts time in training steps

    def loss(self) -> torch.Tensor:
        index = torch.randint(len(self.data.images), (self.settings.batch_size,), generator=self.index_generator)
        return diffusion_loss(self.denoise, self.data.batch(index), self.settings.min_snr_gamma, self.noise_generator)

    def train_steps(self, count: int) -> float:
        s, total = self.settings, torch.zeros(())
        self.model.train()
        for _ in range(count):
            for group in self.optimizer.param_groups:
                group["lr"] = s.lr * lr_factor(self.step, s.warmup_steps, s.total_steps)
            loss = self.loss()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            total += loss.detach()
        return float(total) / count


def step_flops(loss_fn: Callable[[], torch.Tensor]) -> tuple[int, int]:
    """FLOPs of one forward + backward, in all and in convolutions (``torch.utils.flop_counter``)."""
    with FlopCounterMode(display=False) as counter:
        loss_fn().backward()
    counts = counter.get_flop_counts()["Global"]
    return counter.get_total_flops(), sum(flops for op, flops in counts.items() if "convolution" in str(op))


def matmul_flops_per_s(size: int = 2048, repeats: int = 5) -> float:
    """The CPU's fp32 matmul rate: the best of ``repeats`` ``torch.mm`` of two size x size matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def timed(train_steps: Callable[[int], float], steps: int) -> tuple[float, float]:
    """Wall and process CPU seconds per step of ``train_steps(steps)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    train_steps(steps)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


# Where a step's time goes: profiler op names (lower-case substrings) -> the kind of work they are.
# Every op run inside the optimizer's step (record_function "Optimizer.step#AdamW.step": diffusers'
# AdamW is a loop of aten::mul_, lerp_, sqrt, div... per parameter on the CPU) counts as optimizer.
OP_KINDS = (
    ("convolution", ("convolution",)),
    ("groupnorm_silu", ("group_norm", "silu")),
    ("attention", ("attention", "softmax", "bmm")),
    ("optimizer_ema", ("adam", "lerp", "optimizer.")),
)


def op_kind(event: Any) -> str:
    """The kind of a profiler event: by its own name, or "optimizer_ema" inside an optimizer call."""
    name, parent = event.name.lower(), event.cpu_parent
    while parent is not None:
        if parent.name.startswith("Optimizer."):
            return "optimizer_ema"
        parent = parent.cpu_parent
    return next((kind for kind, parts in OP_KINDS if any(part in name for part in parts)), "other")


def time_by_kind(train_steps: Callable[[int], float], steps: int) -> dict[str, float]:
    """Seconds per step in each kind of op of ``OP_KINDS`` (and ``other``), by torch.profiler self time."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        train_steps(steps)
    seconds = dict.fromkeys([kind for kind, _ in OP_KINDS] + ["other"], 0.0)
    for event in profiler.events():
        seconds[op_kind(event)] += event.self_cpu_time_total / 1e6 / steps
    return seconds


class Contestant:
    """One side of the comparison: a training step, its FLOPs, and its timings."""

    def __init__(
        self, name: str, model: nn.Module, train_steps: Callable[[int], float], loss_fn: Callable[[], torch.Tensor]
    ) -> None:
        self.name, self.model, self.train_steps, self.loss_fn = name, model, train_steps, loss_fn
        self.rounds: list[tuple[float, float]] = []
        self.compile_s: float | None = None

    def step_s(self) -> float:
        return statistics.median(wall for wall, _ in self.rounds)

    def cpu_s(self) -> float:
        return statistics.median(cpu for _, cpu in self.rounds)


def contestants(config: Config, compiled: bool) -> list[Contestant]:
    """Ours as a trial trains it and diffusers as a user trains it; with ``compiled``, both also through
    ``torch.compile`` (ours by its ``torch_compile`` setting, diffusers' by wrapping the model)."""
    data = synthetic_data(config)
    sides = []
    for compile_flag in (False, True) if compiled else (False,):
        settings = TrainingSettings(dataset="synthetic", batch_size=config.batch_size, torch_compile=compile_flag)
        ours = DiffusionTrainer(config.arch, data, settings, device=torch.device("cpu"))
        torch.manual_seed(settings.seed)
        model = diffusers_unet(config)
        theirs = DiffusersStep(torch.compile(model) if compile_flag else model, data, settings)
        suffix = " compiled" if compile_flag else ""
        sides.append(
            Contestant(
                "ours" + suffix,
                ours.model,
                ours.train_steps,
                lambda ours=ours: diffusion_loss(
                    ours.model, data.batch(torch.arange(config.batch_size)), settings.min_snr_gamma
                ),
            )
        )
        sides.append(Contestant("diffusers" + suffix, model, theirs.train_steps, theirs.loss))
    return sides


def time_alternately(sides: list[Contestant], args: argparse.Namespace) -> None:
    """Warms each side up (a compiled side compiles in its first step), then times them in turn."""
    for side in sides:
        start = time.perf_counter()
        side.train_steps(1)
        side.compile_s = time.perf_counter() - start if "compiled" in side.name else None
        if args.warmup:
            side.train_steps(args.warmup)
    for _ in range(args.rounds):
        for side in sides:  # alternately, so that load from other processes hits all alike
            side.rounds.append(timed(side.train_steps, args.steps))


def measure(name: str, config: Config, args: argparse.Namespace, peak: float) -> dict:
    sides = contestants(config, args.compile)
    params_ours, params_theirs = count_params(sides[0].model), count_params(sides[1].model)
    params_agree = abs(params_ours - params_theirs) <= PARAM_TOLERANCE * params_theirs
    print(
        f"{name}: parameters ours {params_ours:,}, diffusers {params_theirs:,} "
        f"({'agree' if params_agree else 'DIFFER'} within {PARAM_TOLERANCE:.0%})"
    )
    assert params_agree, f"{name}: the two models are not the same size; fix diffusers_unet()."
    counted = {side.name: step_flops(side.loss_fn) for side in sides[:2]}  # compiling changes no FLOPs
    flops = {name: total for name, (total, _) in counted.items()}
    conv_flops = {name: conv for name, (_, conv) in counted.items()}
    time_alternately(sides, args)
    kinds = {side.name: time_by_kind(side.train_steps, args.steps) for side in sides[:2]}
    row = {
        "config": name,
        "arch": config.arch.key(),
        "image_size": config.image_size,
        "channels": config.channels,
        "batch_size": config.batch_size,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "steps": args.steps,
        "params_ours": params_ours,
        "params_diffusers": params_theirs,
        "params_agree": params_agree,
        "matmul_gflop_per_s": peak / 1e9,
    }
    for side in sides:
        key = side.name.replace(" ", "_")
        base = side.name.split()[0]
        row[f"images_per_s_{key}"] = config.batch_size / side.step_s()
        row[f"cpu_ms_per_step_{key}"] = 1000 * side.cpu_s()
        row[f"step_ms_{key}_rounds"] = [1000 * wall for wall, _ in side.rounds]
        row[f"gflop_per_s_{key}"] = flops[base] / side.step_s() / 1e9
        row[f"utilisation_{key}"] = flops[base] / side.step_s() / peak
        if side.compile_s is not None:
            row[f"compile_s_{key}"] = side.compile_s
    for base in ("ours", "diffusers"):
        row[f"train_gflop_per_step_{base}"] = flops[base] / 1e9
        row[f"ms_per_step_by_kind_{base}"] = {k: 1000 * v for k, v in kinds[base].items()}
        convolution_s = kinds[base]["convolution"]
        row[f"convolution_share_{base}"] = convolution_s / sum(kinds[base].values())
        row[f"convolution_gflop_per_s_{base}"] = conv_flops[base] / convolution_s / 1e9
    by_name = {side.name: side for side in sides}
    row["ratio"] = by_name["diffusers"].step_s() / by_name["ours"].step_s()
    # The CPU is shared with other jobs: CPU seconds per step are the steadier figure with one thread.
    row["ratio_cpu_time"] = by_name["diffusers"].cpu_s() / by_name["ours"].cpu_s()
    # Amdahl: diffusers' step against ours if everything but our convolutions took no time at all.
    row["ratio_bound_convolutions_only"] = by_name["diffusers"].step_s() / kinds["ours"]["convolution"]
    if args.compile:
        row["ratio_compiled_vs_diffusers"] = by_name["diffusers"].step_s() / by_name["ours compiled"].step_s()
        row["ratio_compiled_vs_diffusers_compiled"] = (
            by_name["diffusers compiled"].step_s() / by_name["ours compiled"].step_s()
        )
        saved_s = by_name["ours"].step_s() - by_name["ours compiled"].step_s()
        row["compile_break_even_steps"] = (row["compile_s_ours_compiled"] / saved_s) if saved_s > 0 else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["mnist16", "cifar32"])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of timed steps")
    parser.add_argument("--steps", type=int, default=3, help="training steps of each model per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each model first")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; Ray gives a trial as many as its CPUs (--cpus-per-trial, default 1)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time both models through torch.compile (ours by its torch_compile setting)",
    )
    parser.add_argument("--output", default="benchmarks/results/throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_flops_per_s()
    rows = [measure(name, CONFIGS[name], args, peak) for name in args.configs]
    f0, f1, f2, count = (lambda v: f"{v:.0f}"), (lambda v: f"{v:.1f}"), (lambda v: f"{v:.2f}"), "{:,}".format
    pct = lambda v: f"{100 * v:.0f} %"
    columns = [
        ("config", "config", str),
        ("threads", "threads", str),
        ("images_per_s_ours", "ours img/s", f1),
        ("images_per_s_diffusers", "diffusers img/s", f1),
        ("ratio", "ours/diffusers", f2),
        ("ratio_cpu_time", "(CPU time)", f2),
        ("params_ours", "params ours", count),
        ("params_diffusers", "params diffusers", count),
        ("gflop_per_s_ours", "GFLOP/s ours", f1),
        ("gflop_per_s_diffusers", "GFLOP/s diffusers", f1),
        ("matmul_gflop_per_s", "mm GFLOP/s", f0),
        ("convolution_share_ours", "conv share ours", pct),
        ("convolution_gflop_per_s_ours", "conv GFLOP/s ours", f1),
        ("ratio_bound_convolutions_only", "bound (convs only)", f2),
    ]
    if args.compile:
        columns += [
            ("images_per_s_ours_compiled", "ours compiled img/s", f1),
            ("images_per_s_diffusers_compiled", "diffusers compiled img/s", f1),
            ("ratio_compiled_vs_diffusers", "compiled/diffusers", f2),
            ("ratio_compiled_vs_diffusers_compiled", "compiled/compiled", f2),
            ("compile_s_ours_compiled", "compile s", f0),
        ]
    report(rows, columns, args.output)


if __name__ == "__main__":
    main()
