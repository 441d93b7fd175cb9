"""``bench expression --pairs``: pairs x seeds x candidates, trained for real (``--until good`` under a
ceiling, as the stops table of issue 27 asks), measured as trained and with each merged mouth (follow,
destination), printed as the pairs table and the stops table (engine.bench.expression)."""

from __future__ import annotations

import json

import pytest

from engine.bench.expression import main


@pytest.mark.timeout(900)
def test_the_pairs_table_has_a_row_per_pair_seed_and_candidate(extracted_ws, capsys):
    ws = extracted_ws
    code = main(["--pairs", f"sample={ws.root}", "--seeds", "1,2", "--candidates", "df-match", "--iters", "2",
                 "--every", "2", "--clip-faces", "12", "--until", "good", "--for", "1h"])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    rows = [line for line in printed if line.startswith("| sample |") and "| df-match |" in line]
    assert [row.split(" | ")[1:4] for row in rows] == [["1", "df-match", "2"], ["2", "df-match", "2"]]
    record = json.loads((ws.root / "output" / "bench_expression" / "df-match-s2.json").read_text())
    point = record["points"][-1]
    assert record["pair"] == "sample" and point["iteration"] == 2
    assert point["clip_expr_faces"] == point["mouthdst_expr_faces"] == 12
    assert point["clip_expr_mouth_spread"] is not None and point["clip_expr_mouth_dst_spread"] > 0
    assert point["mouthdst_expr_mouth_corr"] is not None and point["mouthdst_seam"] > 0
    assert point["mouthfollow_expr_faces"] == 12 and point["mouthfollow_expr_mouth_spread"] is not None
    assert point["mouth_auto"] in ("swap", "follow")
    # The stops table: the ceiling (2 iterations) stopped it, not good; nothing saved against that ceiling.
    assert point["stop"] == "target" and point["stop_reason"]
    stops = [line for line in printed if line.startswith("| sample |") and "| target | 2 |" in line]
    assert len(stops) == 2 and all(line.rstrip().endswith("| 0 | 0 | 0 of 0 |") for line in stops), stops
    # The mouth as merged ([merge] mouth = auto -> follow) is measured at the stop, held-out and over the clip.
    assert point["clip_expr_mouth_merged_faces"] > 0 and point["clip_expr_mouth_merged_spread"] is not None
    assert main(["--table", str(ws.root / "output" / "bench_expression"), "--stops", "--iters", "2"]) == 0
    assert capsys.readouterr().out.count("| target | 2 |") == 2
