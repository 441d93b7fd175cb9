"""The wizard's drawing and decision helpers, on small known inputs."""

from __future__ import annotations

from engine import protocol as p
from engine.jobs import public_declarations
from engine.merge.settings import MASK_MODES, MergeSettings
from tui.job_board import JobBoard
from tui.job_table import JobTable
from tui.screens.train import history_from_file, merge_history
from tui.steps import landing_step, step_statuses
from tui.widgets.loss_chart import draw_chart, quality_text, smoothed
from tui.widgets.picture import half_blocks
from tui.widgets.pose_grid import axis_rows
from tui.widgets.settings_form import KNOBS, adjusted


def test_a_falling_loss_runs_from_the_top_left_to_the_bottom_right():
    history = [{"iter": i, "loss_src": 1.0 / i, "loss_dst": 1.0 / i} for i in range(1, 101)]
    lines = draw_chart(history, width=27, height=6).plain.splitlines()[:-1]  # the last line: iterations
    assert len(lines) == 5 and float(lines[0].split("│")[0]) > 0.5  # the top label: the first column's mean
    assert lines[0][7] != "⠀" and lines[-1][7] == "⠀"  # first column: a dot at the top, none at the bottom
    assert lines[-1][-1] != "⠀" and lines[0][-1] == "⠀"  # last column: at the bottom


def test_the_x_axis_follows_the_data_not_the_target():
    # 2 000 iterations of a 100 000 target: the curve spans the whole chart, not its left column.
    history = [{"iter": i, "loss_src": 1.0 / i, "loss_dst": 2.0 / i} for i in range(20, 2001, 20)]
    lines = draw_chart(history, width=47, height=6, target=100_000).plain.splitlines()
    plot = [line[7:] for line in lines[:-1]]
    assert all(any(row[x] != "⠀" for row in plot) for x in range(40)), "every column has a point"
    assert "it 20" in lines[-1] and "it 2000 of 100000" in lines[-1]


def test_the_last_n_window_shows_only_recent_iterations():
    history = [{"iter": i, "loss_src": 1.0 if i <= 1000 else 0.01, "loss_dst": 1.0 if i <= 1000 else 0.01}
               for i in range(10, 3001, 10)]
    whole = draw_chart(history, width=47, height=6).plain.splitlines()
    recent = draw_chart(history, width=47, height=6, window=1000).plain.splitlines()
    assert float(whole[0].split("│")[0]) >= 0.5  # the early, high loss is on the axis
    assert float(recent[0].split("│")[0]) < 0.02 and "it 2000" in recent[-1]  # only the last 1 000


def test_the_smoothed_line_runs_through_noisy_points():
    noisy = [(float(i), 1.0 + (0.5 if i % 2 else -0.5)) for i in range(1, 401)]
    tail = [value for _, value in smoothed(noisy)[-50:]]
    assert all(abs(v - 1.0) < 0.1 for v in tail)  # the raw points swing by 0.5 either side
    assert smoothed([(1.0, 3.0)]) == [(1.0, 3.0)]  # debiased: the first point is itself


def test_held_out_quality_is_drawn_as_sparklines_with_the_latest_value():
    quality = [{"iteration": 500, "ssim_dst": 0.2, "ssim_src": 0.3},
               {"iter": 1000, "quality_ssim_dst": 0.4, "quality_ssim_src": 0.5}]
    lines = quality_text(quality, 40).plain.splitlines()
    assert lines[1].startswith("dst 0.400 @1000") and lines[1].rstrip().endswith("█")
    assert lines[2].startswith("src 0.500 @1000")


def test_half_blocks_put_two_pixels_in_a_cell():
    pixels = [(255, 0, 0), (0, 0, 255)]  # 1 wide, 2 high: red over blue
    text = half_blocks(1, 2, pixels)
    assert text.plain == "▀"
    style = text.spans[0].style
    assert style.color.triplet == (255, 0, 0) and style.bgcolor.triplet == (0, 0, 255)
    assert half_blocks(1, 2, [(255, 255, 255), (255, 255, 255)], no_color=True).plain == "█"
    assert half_blocks(1, 2, [(0, 0, 0), (0, 0, 0)], no_color=True).plain == " "


def test_merge_knobs_cycle_choices_and_refuse_out_of_range_values():
    settings = MergeSettings()
    mask = next(k for k in KNOBS if k.name == "mask")
    assert adjusted(settings, mask, -1).mask == MASK_MODES[-1]
    erode = next(k for k in KNOBS if k.name == "erode")
    assert adjusted(settings, erode, 1).erode == 2
    assert adjusted(MergeSettings(erode=128), erode, 1) is None
    mark = next(k for k in KNOBS if k.name == "mark")
    assert adjusted(settings, mark, 1).mark is True


def test_saved_loss_history_continues_with_newer_live_points():
    saved = history_from_file({"columns": ["iteration", "loss_src", "loss_dst", "time"],
                               "points": [[1, 0.9, 0.8, 0.0], [2, 0.7, 0.6, 0.0], "junk"]})
    assert saved[1] == {"iter": 2, "loss_src": 0.7, "loss_dst": 0.6, "time": 0.0}
    live = [{"iter": 2, "loss_src": 0.7}, {"iter": 3, "loss_src": 0.5}]
    assert [v["iter"] for v in merge_history(saved, live)] == [1, 2, 3]


def test_pose_rows_mark_destination_poses_the_source_lacks():
    rows = axis_rows("yaw", {"edges": [-30, 0, 30], "counts": [5, 40, 0]},
                     {"edges": [-30, 0, 30], "counts": [2, 30, 9]}).plain.splitlines()
    gap_line = rows[3]
    assert gap_line.count("!") == 1 and gap_line.index("!") > rows[0].index("+30") - 2


def test_step_statuses_and_where_the_wizard_lands(workspace):
    board, jobs = JobBoard(), JobTable(public_declarations())
    engine_steps = {"extract_src": {"status": "done"}, "extract_dst": {"status": "done"}, "check": {"status": "done"}}
    statuses = step_statuses(workspace, engine_steps, board, jobs)
    assert statuses["workspace"] == "todo", "no consent yet"
    assert statuses["sources"] == "done" and statuses["extract"] == "done" and statuses["train"] == "todo"
    workspace.record_consent()
    assert landing_step(step_statuses(workspace, engine_steps, board, jobs), None, jobs) == "train"
    board.apply(p.make_event("job_started", 1, job_id="j", kind="merge", params={}))
    statuses = step_statuses(workspace, engine_steps, board, jobs)
    assert statuses["export"] == "running"
    assert landing_step(statuses, "merge", jobs) == "export"
    engine_steps["extract_dst"] = {"status": "failed"}
    assert step_statuses(workspace, engine_steps, board, jobs)["extract"] == "failed"
