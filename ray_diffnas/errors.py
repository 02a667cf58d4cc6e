"""User-facing errors: each message names the problem and the fix."""

from __future__ import annotations


class DiffNASError(ValueError):
    """Base class for errors caused by user input (bad configs, flags, paths or files).

    The command line prints these as one clear line instead of a traceback.
    """


class ConfigError(DiffNASError):
    """An architecture or training setting is invalid."""


class DataError(DiffNASError):
    """A data set is unknown, missing or not in the expected layout."""


class FeatureExtractorError(DiffNASError):
    """No feature extractor can be built for RFID on this data set."""


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class Stopped(Exception):
    """A long command was stopped (Ctrl-C) before it finished. What it had finished is kept; the message
    says where, and that the same command run again goes on from there."""
