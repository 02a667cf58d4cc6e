"""The feature extractors RFID can use, by name (light: settings and the parser read it without torch)."""

from __future__ import annotations

from typing import Literal, get_args

ResolvedFeatureChoice = Literal["inception", "classifier"]
"""A choice that names one extractor: what ``auto`` resolves to on the machine that resolves it."""
FeatureChoice = Literal["auto", ResolvedFeatureChoice]
FEATURE_CHOICES: tuple[str, ...] = get_args(FeatureChoice)
