"""The feature extractors RFID can use, by name (light: settings and the parser read it without torch)."""

from __future__ import annotations

from typing import Literal, get_args

FeatureChoice = Literal["auto", "inception", "classifier"]
FEATURE_CHOICES: tuple[str, ...] = get_args(FeatureChoice)
