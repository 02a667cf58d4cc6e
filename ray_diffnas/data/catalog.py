"""The data sets there are, by name (light: the command's parser reads it without importing torch)."""

from __future__ import annotations

from typing import Literal, get_args

DatasetName = Literal["digits", "mnist", "cifar10", "folder"]
DATASETS: tuple[str, ...] = get_args(DatasetName)
# The size a search trains at unless told otherwise (None: the data set's own). MNIST is padded to
# 32 px; 16 px trains four times faster and still looks like digits.
DEFAULT_IMAGE_SIZE: dict[str, int] = {"mnist": 16}
# Each data set's own image size, as it loads (a folder's is known only once its images are read).
OWN_IMAGE_SIZE: dict[str, int] = {"digits": 8, "mnist": 32, "cifar10": 32}
# The data sets read from --data-root; the others ship with their packages and take none.
ROOTED_DATASETS: tuple[str, ...] = ("cifar10", "folder")
