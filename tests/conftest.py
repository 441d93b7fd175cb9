"""Fixtures: a fresh workspace from the shipped samples, and a real engine process for it. And the
``slow`` marker, set here by what a test uses, so ``make test-fast`` (``pytest -m "not slow"``) leaves
out every test that starts an engine or another process, extracts, trains or merges."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

import pytest

from engine.launcher import start_engine
from engine.workspace import Workspace
from tests.helpers import make_workspace, stop_engine


@pytest.fixture(scope="session", autouse=True)
def c2pa_identity_folder(tmp_path_factory) -> Iterator[None]:
    """Every export signs with Content Credentials: the local signing identity it creates goes to a temp
    folder (SWAPWIZARD_C2PA_DIR, inherited by the engines the tests start), never the real ~/.config."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWAPWIZARD_C2PA_DIR", str(tmp_path_factory.mktemp("c2pa") / "identity"))
        yield


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    """A new workspace with engine/samples/src.mp4 and dst.mp4 as its sources."""
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def engine_ws(workspace) -> Iterator[Workspace]:
    """``workspace`` with its engine started (a real detached process); stopped afterwards."""
    start_engine(workspace)
    try:
        yield workspace
    finally:
        stop_engine(workspace)


#: What a slow test calls (in its body, in a fixture it uses, or through a helper of tests/ that does):
#: real processes (an engine, the CLI, ffmpeg, tmux, a terminal, a browser) and the heavy work itself
#: (extraction and its face models, training, merging, quality measurement) run in the test's process.
SLOW_CALLS = re.compile(
    r"\b(start_engine|ensure_engine|run_job|kill_job_when|cli|subprocess\.\w+|Popen|Terminal|Pty|ffmpeg|"
    r"chromium|EngineClient|AsyncEngineClient|FaceFinder|DlibJudge|Trainer|TrainingRun|trainer_step|"
    r"evaluate|train|extract|extract_side|merge|segment|quality|compare|study)\(|\.module\.run\(")
#: Fixtures that hold a real engine or the results of extraction or training, by name (their work is
#: done through other modules, where the calls above are not seen).
SLOW_FIXTURES = {"engine_ws", "extracted", "media", "occluded_video", "models_ws", "extracted_ws",
                 "trained_ws", "train_ws", "segmented"}
#: Tests that start nothing and train nothing but took over 3 s on the shared 2-core machine.
SLOW_TESTS = {
    "tests/scale/test_events_compaction.py::test_a_long_run_stays_under_the_bound_and_replays_whole",
    "tests/scale/test_events_compaction.py::test_thousands_of_jobs_keep_the_bound_and_count_what_was_summarised",
    "tests/scale/test_split_memory.py::test_the_split_keeps_no_record_once_training_has_its_faces",
    "tests/models/test_cnn.py::test_the_losses_with_vgg_layout_weights",
    "tests/models/test_cnn.py::test_the_network_is_multi_scale_with_about_a_million_parameters_at_128",
    "tests/extract/test_extract.py::test_small_faces_finds_the_distant_pianist",
    "tests/extract/test_media.py::test_decoding_ahead_gives_every_frame_in_order_from_its_own_thread",
}


def _source(obj: object) -> str:
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def _slow_function(function: object, seen: dict[object, bool]) -> bool:
    """Whether ``function`` makes a slow call, itself or through the functions of tests/ it calls."""
    if function in seen:
        return seen[function]
    seen[function] = False  # a cycle adds nothing
    text = _source(function)
    slow = bool(SLOW_CALLS.search(text))
    if not slow and text:
        names = getattr(function, "__globals__", {})
        for called in set(re.findall(r"\b(\w+)\(", text)):
            helper = names.get(called)
            if (inspect.isfunction(helper) and helper.__module__.startswith("tests")
                    and helper is not function and _slow_function(helper, seen)):
                slow = True
                break
    seen[function] = slow
    return slow


def _is_slow(item: pytest.Item, seen: dict[object, bool]) -> bool:
    if item.nodeid in SLOW_TESTS or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    functions = [getattr(item, "function", None)]
    for defs in item._fixtureinfo.name2fixturedefs.values() if hasattr(item, "_fixtureinfo") else ():
        functions += [d.func for d in defs if d.func.__module__.startswith("tests")]
    return any(_slow_function(f, seen) for f in functions if f is not None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seen: dict[object, bool] = {}
    for item in items:
        if item.get_closest_marker("slow") is None and _is_slow(item, seen):
            item.add_marker(pytest.mark.slow)
