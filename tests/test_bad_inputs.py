"""A table of bad inputs: each gets one clear error naming the problem and the fix."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from ray_diffnas import DiffNASError, GraphDiffusionSearcher, UNetArch, UNetSpace, load_dataset
from ray_diffnas.app.options import SearchOptions, load_options
from ray_diffnas.app.run import warn_ignored_options
from ray_diffnas.bench.table import load_table
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.trainable.settings import TrainingSettings
from ray_diffnas.trainable.trial import CONFIG_FILE, STATE_FILE, load_checkpoint, run_training

GOOD = {"base_channels": 16, "channel_mult": [1, 2], "num_res_blocks": [1, 1], "attention_resolutions": [8]}


def arch(**changes) -> Callable[[], object]:
    return lambda: UNetArch.from_dict({**GOOD, **changes}, image_size=16)


def trial(**config) -> Callable[[], object]:
    return lambda: run_training({"arch": GOOD, "dataset": "digits", "image_size": 16, **config}, None, print)


def in_temp_folder(write: Callable[[Path], object], then: Callable[[Path], object]) -> Callable[[], object]:
    """A bad input that is a file: ``write`` makes it in a fresh folder, ``then`` hands it in."""

    def call() -> object:
        with tempfile.TemporaryDirectory() as folder:
            write(Path(folder))
            return then(Path(folder))

    return call


def corrupted_checkpoint(folder: Path) -> None:
    (folder / CONFIG_FILE).write_text(json.dumps({"arch": GOOD, "dataset": "digits", "image_size": 16}))
    (folder / STATE_FILE).write_bytes(b"PK\x03\x04 truncated" * 10)


def nb201_results(folder: Path) -> None:
    arch = {"ops": ["nor_conv_3x3", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1"]}
    pd.DataFrame({"arch": [json.dumps(arch)], "status": ["completed"], "rfid_curve": [[91.0]]}).to_parquet(
        folder / "results.parquet"
    )


BAD_INPUTS = [
    (
        "empty channel_mult",
        arch(channel_mult=[], num_res_blocks=[]),
        r"channel_mult must have 2 to 5 entries \(one per level\), but got 0",
    ),
    ("six levels", arch(channel_mult=[1] * 6, num_res_blocks=1), r"channel_mult must have 2 to 5 entries"),
    (
        "attention at a resolution the model lacks",
        arch(attention_resolutions=[2]),
        r"attention_resolutions \[2\] are not resolutions this model has; allowed values are \[16, 8\]",
    ),
    ("negative dropout", arch(dropout=-0.1), r"dropout must be in \[0, 1\), but got -0.1"),
    ("base channels not a multiple of 8", arch(base_channels=12), r"base_channels must be a multiple of 8"),
    ("heads that do not divide channels", arch(num_heads=3), r"num_heads must be >= 1 and divide the channels"),
    (
        "num_res_blocks of the wrong length",
        arch(num_res_blocks=[1, 1, 1]),
        r"num_res_blocks must have one entry per level \(2\)",
    ),
    ("string where an int belongs", arch(base_channels="32"), r"base_channels must be an integer, but got '32'"),
    (
        "unknown architecture field",
        arch(channels=32),
        r"Unknown architecture field\(s\) \['channels'\]; allowed fields",
    ),
    (
        "too many levels for the image size",
        lambda: UNetArch.from_dict(
            {**GOOD, "channel_mult": [1, 1, 1, 1, 1], "num_res_blocks": 1, "attention_resolutions": []}, image_size=8
        ),
        r"image_size must be divisible by 16, but image_size is 8; use fewer levels",
    ),
    (
        "unknown data set",
        lambda: load_dataset("imagenet"),
        r"Unknown dataset 'imagenet'; choose one of \['digits', 'mnist', 'cifar10', 'folder'\]",
    ),
    (
        "missing data path",
        lambda: load_dataset("cifar10", "/no/such/folder"),
        r"Data root '/no/such/folder' for dataset 'cifar10' does not exist; expected a folder in the official",
    ),
    ("cifar10 without a data root", lambda: load_dataset("cifar10"), r"needs a data root \(--data-root"),
    (
        "typo in a config key",
        lambda: TrainingSettings.from_config({"arch": {}, "learning_rate": 1e-3}),
        r"Unknown config key\(s\) \['learning_rate'\] for train_diffusion",
    ),
    (
        "zero batch size in a hand-written config",
        trial(batch_size=0),
        r"batch_size must be a positive integer, but got 0",
    ),
    ("negative learning rate", trial(lr=-1.0), r"lr must be a number > 0, but got -1.0"),
    ("unknown feature extractor", trial(rfid_features="clip"), r"rfid_features must be one of \['auto', 'inception'"),
    (
        "config without an architecture",
        lambda: run_training({"dataset": "digits"}, None, print),
        r"needs an 'arch' entry",
    ),
    (
        "space with impossible level counts",
        lambda: UNetSpace(image_size=8, num_levels=(5,)),
        r"num_levels \[5\] are not possible for image_size 8",
    ),
    (
        "memory limit that is not positive",
        trial(max_memory_gb=0),
        r"max_memory_gb must be a number > 0 \(GiB\) or None",
    ),
    (
        "torch_compile given as a string",
        trial(torch_compile="yes"),
        r"torch_compile must be True or False, but got 'yes'",
    ),
    (
        "resuming a folder that holds no search",
        lambda: load_options("/no/such/search"),
        r"'/no/such/search' holds no search to resume .* pass the --output folder of a search",
    ),
    (
        "architecture outside the space",
        lambda: UNetSpace(image_size=16, channel_mults=(1, 2)).validate({**GOOD, "channel_mult": [1, 4]}),
        r"channel_mult values \[4\] are not allowed; allowed values: \[1, 2\]",
    ),
    (
        "corrupted checkpoint file",
        in_temp_folder(corrupted_checkpoint, load_checkpoint),
        r"trainer.pt' is not a readable train_diffusion checkpoint .* Resume from an earlier checkpoint folder",
    ),
    (
        "warm start from a search over another space",
        in_temp_folder(
            nb201_results,
            lambda folder: GraphDiffusionSearcher(
                space=UNetSpace(image_size=16), metric="rfid", mode="min", warm_start=str(folder / "results.parquet")
            ),
        ),
        r"holds 1 finished architecture\(s\), none of them in this searcher's space .* another space",
    ),
    (
        "empty table for bench-table",
        in_temp_folder(
            lambda folder: (folder / "t.csv").write_text("arch,acc\n"),
            lambda folder: load_table(folder / "t.csv", NB201Space()),
        ),
        r"has no rows; it needs one row per architecture",
    ),
]


@pytest.mark.parametrize("call,message", [(c, m) for _, c, m in BAD_INPUTS], ids=[n for n, _, _ in BAD_INPUTS])
def test_bad_input_gets_one_clear_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(DiffNASError, match=message):
        call()


BAD_FLAGS = [
    (["--num-samples", "0"], "argument --num-samples: expected a positive integer, but got 0"),
    (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
    (["--scheduler", "hyperband"], "argument --scheduler: invalid choice: 'hyperband'"),
    # Optuna's samplers search a flat form a trial cannot train from: offered by bench-table, not by search
    (["--searcher", "optuna"], "argument --searcher: invalid choice: 'optuna' (choose from 'graph', 'gpt4',"),
    (["--reduction-factor", "1"], "ASHA's reduction factor must be > 1 (it keeps 1/factor of the trials"),
    (["--grace-period", "9", "--max-iterations", "8"], "--grace-period 9 is past the trials' end (8 iterations)"),
    (["--grace-period", "0"], "argument --grace-period: expected a positive integer, but got 0"),
    pytest.param(  # found when the data loads: after torch's import, seconds
        ["--dataset", "cifar10", "--data-root", "/no/such/folder"],
        "error: Data root '/no/such/folder' for dataset 'cifar10' does not exist",
        marks=pytest.mark.slow,
    ),
    pytest.param(["--dataset", "folder"], "error: Dataset 'folder' needs a data root", marks=pytest.mark.slow),
    (["--image-size", "5000"], "image_size must be an integer in [4, 1024] or None, but got 5000"),
    (["--image-size", "7"], "image_size must be even (a UNet halves it at least once, for 2 levels), but got 7"),
    (["--rfid-samples", "1"], "rfid_samples must be an integer >= 2 (FID needs a covariance), but got 1"),
    (
        ["--searcher", "gpt4", "--llm", "local", "--model", "gpt-4o"],
        "--model 'gpt-4o': --llm local serves smollm2-135m-instruct only; drop --model",
    ),
    (["--data-root", "/data/cifar"], "--data-root '/data/cifar' is read only for --dataset cifar10 or folder"),
    (["--cpus-per-trial", "nan"], "--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, but got nan"),
    (["--gpus-per-trial", "1.5"], "--gpus-per-trial 1.5: Ray shares a GPU in fractions below 1"),
    (["--searcher", "gpt4", "--llm", "openai"], "--searcher gpt4 needs an LLM: set OPENAI_API_KEY"),
    # A misspelt metric would make every trial infeasible, found out only when the search ends.
    (["--constraint", "latncy_ms<=5"], "--constraint latncy_ms<=5: trials report no 'latncy_ms'; bound one of rfid"),
    (
        ["--objective", "rfid:min", "--objective", "latency_ms:max"],
        "--objective latency_ms: a cost is better lower, so a search minimises it; give --objective latency_ms:min",
    ),
]


FLAG_IDS = [" ".join(case.values[0] if hasattr(case, "values") else case[0]) for case in BAD_FLAGS]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=FLAG_IDS)
def test_bad_command_line_flag_gets_one_line_and_no_traceback(flags: list[str], message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    run = subprocess.run(
        [sys.executable, "-m", "ray_diffnas", "search", "--output", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


IGNORED_OPTIONS = [
    (
        SearchOptions(searcher="random", constraints=("latency_ms<=5",)),
        "--constraint guides only the graph, gpt4, hybrid, evolution searchers; random ignores it",
    ),
    (SearchOptions(scheduler="none", reduction_factor=3.0), "--reduction-factor is ASHA's; --scheduler none ignores"),
    (SearchOptions(scheduler="none", grace_period=2), "--grace-period is ASHA's; --scheduler none ignores"),
    (
        SearchOptions(searcher="graph", hybrid_warmup="llm"),  # not the default (random)
        "--hybrid-warmup is the hybrid searcher's; graph ignores",
    ),
    (SearchOptions(searcher="graph", llm="local"), "--llm is the LLM searchers' (gpt4, hybrid); graph ignores it"),
]


@pytest.mark.parametrize(
    "options,message", IGNORED_OPTIONS, ids=["constraint", "reduction-factor", "grace-period", "hybrid-warmup", "llm"]
)
def test_an_option_the_search_would_ignore_is_named(
    options: SearchOptions, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ray_diffnas.app.run"):
        warn_ignored_options(options)
    assert [r.getMessage() for r in caplog.records if message in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ray_diffnas.app.run"):
        warn_ignored_options(SearchOptions())  # the defaults use everything they set
    assert not caplog.records


@pytest.mark.parametrize("command", ["search", "bench-table", "build-table"])
def test_every_flag_has_help_and_each_default_is_said_once(command: str) -> None:
    from ray_diffnas.app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        assert action.help and len(action.help) > 10, action.option_strings
    text = sub.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    assert all(line.count("(default:") <= 1 for line in text.splitlines())
    if command == "search":  # a default of 0 is a value (seed 0, no GPUs); a switch's default is not one to give
        assert "search's searcher (default: 0)" in " ".join(text.split()) and "(default: 0.0)" in text
        assert "one line per trial event (default" not in " ".join(text.split())


def test_the_gflops_bound_is_checked_at_the_data_sets_own_size() -> None:
    """digits trains at its own 8 px: a bound that 8 px UNets meet is not refused for 32 px ones."""
    SearchOptions(dataset="digits", max_gflops=0.01).check()
    with pytest.raises(DiffNASError, match="max_gflops=0.0001"):
        SearchOptions(dataset="digits", max_gflops=0.0001).check()
