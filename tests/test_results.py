"""The results table's RFID curve: one value per iteration, as in the search memory."""

from __future__ import annotations

import pandas as pd

from ray_diffnas.app.results import _rfid_curve


def test_a_re_run_iteration_counts_once_with_its_last_report() -> None:
    """A trial resumed from an older checkpoint reports iteration 2 again: the re-run is what its model went on from."""
    history = pd.DataFrame({"training_iteration": [1, 2, 2, 3], "rfid": [40.0, 26.2, 26.3, 20.0]})
    assert _rfid_curve(history) == [40.0, 26.3, 20.0]


def test_a_history_without_rfid_has_no_curve() -> None:
    assert _rfid_curve(None) == [] and _rfid_curve(pd.DataFrame({"loss": [1.0]})) == []
