"""Identity figures of trained micro models: compare's table has the identity rows, and the trainer
measures the swap's identity at each save (engine.quality.likeness)."""

from __future__ import annotations

import json

import pytest

from engine.quality.compare import compare
from engine.quality.history import read as read_history
from tests.quality.conftest import LONG_ITERS


@pytest.mark.timeout(300)
def test_compare_has_identity_columns_and_training_measures_identity_at_saves(trained_ws) -> None:
    result = compare(trained_ws, ["short", "long"], frames=6, device="cpu")
    rows = {row["metric"]: row for row in result["table"]}
    for key, better in (("id_src", "low"), ("id_dst", "high"), ("id_closer_src", "high")):
        assert rows[key]["better"] == better
        for name in ("short", "long"):
            value = rows[key]["values"][name]
            assert isinstance(value, float) and 0 <= value <= (1 if key == "id_closer_src" else 2), (key, value)
    for entry in result["models"]:
        assert entry["metrics"]["id_faces"] == 6
    print("identity of the micro models:", json.dumps({e["name"]: {k: e["metrics"][k] for k in
                                                                   ("id_src", "id_dst", "id_closer_src")}
                                                      for e in result["models"]}))
    saved = [p for p in read_history(trained_ws.model_dir("long"))
             if p["source"] == "training" and p["iteration"] == LONG_ITERS]
    assert saved and isinstance(saved[-1].get("id_src"), float) and isinstance(saved[-1].get("id_closer_src"), float)
