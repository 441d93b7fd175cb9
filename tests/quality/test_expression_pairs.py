"""``bench expression --pairs``: pairs x seeds x candidates, trained for real, measured as trained and with
the destination's mouth, printed as one table (engine.bench.expression)."""

from __future__ import annotations

import json

import pytest

from engine.bench.expression import main


@pytest.mark.timeout(900)
def test_the_pairs_table_has_a_row_per_pair_seed_and_candidate(extracted_ws, capsys):
    ws = extracted_ws
    code = main(["--pairs", f"sample={ws.root}", "--seeds", "1,2", "--candidates", "df-match", "--iters", "2",
                 "--every", "2", "--clip-faces", "12"])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [line for line in printed if line.startswith("| sample |")]
    assert [row.split(" | ")[1:4] for row in rows] == [["1", "df-match", "2"], ["2", "df-match", "2"]]
    record = json.loads((ws.root / "output" / "bench_expression" / "df-match-s2.json").read_text())
    point = record["points"][-1]
    assert record["pair"] == "sample" and point["iteration"] == 2
    assert point["clip_expr_faces"] == point["mouthdst_expr_faces"] == 12
    assert point["clip_expr_mouth_spread"] is not None and point["clip_expr_mouth_dst_spread"] > 0
    assert point["mouthdst_expr_mouth_corr"] is not None and point["mouthdst_seam"] > 0
    assert point["mouth_auto"] in ("swap", "follow")
