"""Throughput and model FLOP utilisation of the trainable's GPU path, on CIFAR-10-sized input.

Times ``DiffusionTrainer.train_steps`` (what a trial runs: bf16 autocast, channels-last, fused AdamW
and the EMA update on a GPU) on synthetic 3x32x32 images, optionally through ``torch.compile``
(``--compile``: the trial setting ``torch_compile``). Model FLOP utilisation is the FLOP/s achieved (FLOPs of one
forward + backward counted by ``torch.utils.flop_counter``, over the step time) divided by a peak:
``--peak-tflops`` if given, else the dense bf16 peak of the GPU by name (table below), else, on the
CPU, the measured fp32 ``torch.mm`` rate. With no GPU the very same code runs on
the CPU with a small batch: the trainer's CPU path (fp32), or ``--precision bf16`` to autocast to
bf16 on the CPU as the GPU path does; the JSON says which.

    python -m benchmarks.gpu_path [--device auto|cuda|cpu] [--batch-size N] [--steps 20] [--repeats 3]
        [--warmup 3] [--precision auto|bf16|fp32] [--compile] [--peak-tflops T] [--base-channels 32]
        [--threads 1] [--output benchmarks/results/gpu_path.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.report import report
from benchmarks.throughput import matmul_flops_per_s
from ray_diffnas.data.datasets import ImageDataset
from ray_diffnas.diffusion.schedule import diffusion_loss
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.model.cost import count_params
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.settings import TrainingSettings

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's data sheets, matched in order
# against torch.cuda.get_device_name().
GPU_PEAK_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)
DEFAULT_BATCH = {"cuda": 128, "cpu": 8}
SYNTHETIC_IMAGES = 4096


def gpu_peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in GPU_PEAK_TFLOPS if key in name), None)


def cifar_like_data() -> ImageDataset:
    images = torch.randint(
        0, 256, (SYNTHETIC_IMAGES, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return ImageDataset("synthetic-cifar10", images, None)


def build_trainer(args: argparse.Namespace, device: torch.device) -> tuple[DiffusionTrainer, str]:
    """The trainer a trial builds, and the precision its step runs in."""
    arch = UNetArch(
        base_channels=args.base_channels,
        channel_mult=(1, 2, 2),
        num_res_blocks=(2, 2, 2),
        attention_resolutions=(8,),
        num_heads=4,
        mid_attention=True,
    )
    batch = args.batch_size or DEFAULT_BATCH[device.type]
    settings = TrainingSettings(dataset="cifar10", batch_size=batch, torch_compile=args.compile)
    trainer = DiffusionTrainer(arch, cifar_like_data(), settings, device)
    precision = "bf16" if device.type == "cuda" else "fp32"  # what DiffusionTrainer._autocast does
    if device.type == "cpu" and args.precision == "bf16":
        # The GPU path's autocast, on the CPU: the rest of the step is the trainer's own.
        trainer._autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
        precision = "bf16"
    elif args.precision not in ("auto", precision):
        raise SystemExit(
            f"--precision {args.precision} is not what the trainer runs on {device.type}; use auto or {precision}."
        )
    return trainer, precision


def step_flops(trainer: DiffusionTrainer) -> int:
    """FLOPs of one forward + backward of the trainer's model on one batch."""
    x0 = next(trainer._batches(1))
    with FlopCounterMode(display=False) as counter:
        with trainer._autocast():
            loss = diffusion_loss(trainer.model, x0, trainer.settings.min_snr_gamma)
        loss.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def timed_steps(trainer: DiffusionTrainer, steps: int) -> float:
    """Seconds per step of ``train_steps(steps)`` (which ends on a host sync, the loss check)."""
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    trainer.train_steps(steps)
    sync()
    return (time.perf_counter() - start) / steps


def peak_flops(args: argparse.Namespace, device: torch.device) -> tuple[float, str]:
    if args.peak_tflops:
        return args.peak_tflops * 1e12, "--peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_tflops(name)
        if peak is None:
            raise SystemExit(f"No known bf16 peak for {name!r}; pass --peak-tflops.")
        return peak * 1e12, f"data sheet, {name} dense bf16"
    # fp32 even for a bf16 step: CPUs without bf16 instructions emulate it (a bf16 mm is ~100x slower).
    return matmul_flops_per_s(), f"measured fp32 torch.mm 2048x2048, {torch.get_num_threads()} threads"


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    trainer, precision = build_trainer(args, device)
    channels_last = trainer.model.input_conv.weight.is_contiguous(memory_format=torch.channels_last)
    flops = step_flops(trainer)
    compile_s = None
    if args.compile:
        compile_s = timed_steps(trainer, 1)  # the first step compiles (TrainingSettings.torch_compile)
    trainer.train_steps(args.warmup)
    seconds = statistics.median(timed_steps(trainer, args.steps) for _ in range(args.repeats))
    peak, peak_source = peak_flops(args, device)
    batch = trainer.settings.batch_size
    note = "" if torch.cuda.is_available() else "no GPU was lent to this run: the same code path measured on the CPU"
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "path": (
            "trainer GPU path"
            if device.type == "cuda"
            else "trainer CPU path"
            if precision == "fp32"
            else "trainer CPU path with the GPU path's bf16 autocast"
        ),
        "precision": precision,
        "channels_last": channels_last,
        "compile": args.compile,
        "compile_s": compile_s,
        "threads": torch.get_num_threads(),
        "arch": trainer.arch.key(),
        "params": count_params(trainer.model),
        "batch_size": batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "step_ms": 1000 * seconds,
        "images_per_s": batch / seconds,
        "train_gflop_per_step": flops / 1e9,
        "achieved_tflop_per_s": flops / seconds / 1e12,
        "peak_tflop_per_s": peak / 1e12,
        "peak_source": peak_source,
        "mfu": flops / seconds / peak,
        "note": note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 on a GPU, 8 on the CPU")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="auto: the trainer's (bf16 on a GPU, fp32 on the CPU); bf16 on the CPU autocasts",
    )
    parser.add_argument(
        "--compile", action="store_true", help="train through torch.compile (the trial setting torch_compile)"
    )
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak for the utilisation figure")
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (a trial's, by default)")
    parser.add_argument("--output", default="benchmarks/results/gpu_path.json")
    args = parser.parse_args()
    row = measure(args)
    if row["note"]:
        print(row["note"])
    f1, f3 = (lambda v: f"{v:.1f}"), (lambda v: f"{v:.3f}")
    report(
        [row],
        [
            ("device", "device", str),
            ("path", "path", str),
            ("precision", "precision", str),
            ("compile", "compile", str),
            ("batch_size", "batch", str),
            ("images_per_s", "img/s", f1),
            ("step_ms", "ms/step", f1),
            ("achieved_tflop_per_s", "TFLOP/s", f3),
            ("peak_tflop_per_s", "peak TFLOP/s", f3),
            ("mfu", "MFU", f3),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
