"""Job kinds are declared once (engine/jobs: ``JOB = JobKind(...)``); a bad declaration fails when it is made,
the engine publishes the declarations in its status, and the wizard derives which screen shows each kind."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from dataclasses import dataclass

import pytest

import engine.jobs
from engine.client import EngineClient
from engine.jobs import HELPERS, WIZARD_SCREENS, JobDeclarationError, JobKind, job_kinds, public_declarations
from tui.job_table import JobTable
from tui.steps import STEP_NAMES, job_step, landing_step, step_statuses


@dataclass
class Params:
    count: int = 1


def run(ws, params, report) -> dict:
    return {}


def test_every_job_module_declares_one_kind_that_the_engine_publishes():
    import pkgutil

    modules = {info.name for info in pkgutil.iter_modules(engine.jobs.__path__)} - set(HELPERS)
    kinds = job_kinds()
    assert len(kinds) == len(modules), "one kind per module"
    assert {job.module.__name__.rsplit(".", 1)[1] for job in kinds.values()} == modules
    declared = public_declarations()
    assert json.loads(json.dumps(declared)) == declared
    assert declared["merge_preview"]["lane"] == "interactive" and declared["run"]["managed_steps"]
    assert declared["diagnostic_count"]["consent"] is False and declared["train"]["consent"] is True


@pytest.mark.parametrize(("changes", "words"), [
    ({"lane": "interactiv"}, "names lane 'interactiv'"),
    ({"steps": ("trian",)}, "workspace steps ['trian'] that do not exist"),
    ({"steps": "train"}, "workspace steps 'train' that do not exist"),
    ({"managed_steps": ("merge", "export")}, "workspace steps ['export']"),
    ({"screens": ("trainer",)}, "wizard screens ['trainer'] that do not exist"),
    ({"screens": "train"}, "wizard screens 'train'"),
    ({"screens": ("train",), "label": ""}, "needs a label"),
    ({"kind": "Made Up"}, "is not a job kind's name"),
    ({"params": dict}, "params that are not a dataclass"),
    ({"params": dataclasses.make_dataclass("P", [("count", int)])}, "parameters without a default: count"),
    ({"run": "run"}, "a run that is not a function"),
    ({"stoppable": "yes"}, "stoppable and consent are true or false"),
])
def test_a_bad_declaration_fails_when_it_is_made(changes, words):
    with pytest.raises(JobDeclarationError) as error:
        JobKind(**{"kind": "made_up", "params": Params, "run": run, "label": "Made up", **changes})
    assert words in str(error.value)


def test_a_misspelt_field_fails_too():
    with pytest.raises(TypeError, match="stopable"):
        JobKind(kind="made_up", params=Params, run=run, stopable=True)  # type: ignore[call-arg]


@pytest.fixture
def extra_jobs(tmp_path, monkeypatch):
    """A folder of job modules beside engine/jobs (as if they were in it); the kinds are found afresh."""
    monkeypatch.setattr(engine.jobs, "__path__", [*engine.jobs.__path__, str(tmp_path)])
    monkeypatch.setattr(engine.jobs, "_KINDS", None)
    yield tmp_path
    engine.jobs._KINDS = None
    for name in [n for n, m in sys.modules.items() if str(getattr(m, "__file__", "")).startswith(str(tmp_path))]:
        del sys.modules[name]


def test_a_job_module_without_a_declaration_or_a_kind_declared_twice_is_refused(extra_jobs):
    (extra_jobs / "made_up.py").write_text("KIND = 'made_up'\n")
    with pytest.raises(JobDeclarationError, match="made_up declares no JOB"):
        job_kinds()
    engine.jobs._KINDS = None
    (extra_jobs / "made_up.py").unlink()
    (extra_jobs / "made_twice.py").write_text(textwrap.dedent("""
        from engine.jobs import JobKind
        from engine.jobs.diagnostic import Params, run

        JOB = JobKind(kind="diagnostic_count", params=Params, run=run)
    """))
    with pytest.raises(JobDeclarationError, match="Two job modules declare the kind 'diagnostic_count'"):
        job_kinds()


def test_a_kind_added_in_one_file_shows_on_its_wizard_step(extra_jobs, workspace):
    from engine import protocol as p
    from tui.job_board import JobBoard

    (extra_jobs / "made_up.py").write_text(textwrap.dedent("""
        from engine.jobs import JobKind
        from engine.jobs.diagnostic import Params, run

        JOB = JobKind(kind="made_up", params=Params, run=run, stoppable=True, screens=("train",),
                      label="Made up")
    """))
    jobs = JobTable(public_declarations())
    assert "made_up" in jobs.shown_on("train") and "made_up" in jobs.stopped_on("train")
    assert job_step(jobs, "made_up") == "train" and jobs.label("made_up") == "Made up"
    board = JobBoard()
    board.apply(p.make_event("job_started", 1, job_id="j", kind="made_up", params={}))
    assert step_statuses(workspace, {}, board, jobs)["train"] == "running"
    assert landing_step({}, "made_up", jobs) == "train"


def test_what_the_wizard_derives_from_the_declarations():
    jobs = JobTable(public_declarations())
    assert set(WIZARD_SCREENS) <= {*STEP_NAMES, "masks"}, "every screen a job can name is one the wizard has"
    assert jobs.shown_on("extract") == ("extract", "run", "sort")
    assert jobs.stopped_on("export") == ("merge", "run") and jobs.stopped_on("merge") == ()
    assert set(jobs.shown_on("masks")) == {"segment", "masks_export", "masks_import"}
    # The pipeline moves through the steps (the wizard follows it); a preview does not run its step.
    assert job_step(jobs, "run") is None and job_step(jobs, "merge") == "export"
    assert job_step(jobs, "segment") is None and not jobs.moves_steps("merge_preview")
    assert not jobs.needs_consent("diagnostic_count") and jobs.needs_consent("not_published_yet")


def test_the_engine_publishes_the_declarations_in_its_status(engine_ws):
    with EngineClient(engine_ws.root) as client:
        assert client.status()["jobs"] == public_declarations()


def test_the_job_kinds_reference_page_holds_every_kind():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "gen_reference.py"
    spec = importlib.util.spec_from_file_location("gen_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.jobs_reference()
    for kind, job in job_kinds().items():
        assert f"| `{kind}` | {job.label} | {job.lane} |" in page
