"""Fixtures: a fresh workspace from the shipped samples, and a real engine process for it."""

from __future__ import annotations

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
