"""RFID: clean-fid's Fréchet distance on features of a named extractor, with cached statistics."""

from __future__ import annotations

import pytest
import torch

from ray_diffnas import RFID, FeatureExtractorError
from ray_diffnas.metrics.features import INCEPTION_ENV, build_extractor


@pytest.fixture(scope="module")
def digits_rfid(digits) -> RFID:
    return RFID(digits)


def test_real_images_score_near_zero_and_noise_scores_high(digits, digits_rfid: RFID) -> None:
    shuffled = torch.randperm(len(digits.images), generator=torch.Generator().manual_seed(0))
    real = digits_rfid(digits.batch(shuffled[:900]))
    everything = digits_rfid(digits.images)
    noise = digits_rfid(torch.rand(900, 1, 8, 8) * 2 - 1)
    assert abs(everything) < 1e-6
    assert real < 1.0
    assert noise > 20 * max(real, 0.1)


def test_every_score_names_its_extractor(digits, digits_rfid: RFID) -> None:
    assert digits_rfid.features == f"classifier:{digits.fingerprint()}"


def test_reference_statistics_and_classifier_are_cached_once(digits, digits_rfid: RFID, isolated_cache) -> None:
    cached = sorted(p.name for p in isolated_cache.iterdir() if not p.name.endswith(".lock"))
    assert f"classifier-{digits.fingerprint()}.pt" in cached
    assert any(name.startswith(f"stats-{digits.fingerprint()}") for name in cached)
    again = RFID(digits)
    assert again.features == digits_rfid.features
    assert (again.reference.mu == digits_rfid.reference.mu).all()


def test_feature_classifier_is_accurate_on_held_out_digits(digits_rfid: RFID) -> None:
    assert digits_rfid.extractor.accuracy > 0.9


def test_inception_without_weights_fails_with_the_fix(digits, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(INCEPTION_ENV, str(tmp_path / "missing.pt"))
    with pytest.raises(FeatureExtractorError, match="is not a file; point it at clean-fid's inception-2015-12-05.pt"):
        build_extractor(digits, "inception")


def test_a_stale_inception_variable_does_not_stop_the_classifier(digits, monkeypatch, tmp_path) -> None:
    """8 px grey digits never use Inception: a weights path left set from other work must not matter."""
    monkeypatch.setenv(INCEPTION_ENV, str(tmp_path / "missing.pt"))
    assert RFID(digits).features == f"classifier:{digits.fingerprint()}"  # auto picks the classifier here
    assert build_extractor(digits, "classifier") is not None
