"""The on-disk face store: the same faces as loading them into memory, read per batch, rebuilt whenever
the crops it was built from change (never silently stale), and a crash mid-build leaves no store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.faces.extract import ExtractSettings, extract_side
from engine.report import NullReporter
from engine.train import samples
from engine.train.store import StoredFaces
from tests.helpers import make_workspace

RES = 64
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A workspace whose src sample clip was really extracted (128 px PNG crops, with records)."""
    ws = make_workspace(tmp_path_factory.mktemp("store") / "ws")
    extract_side(ws, "src", ExtractSettings(size=128, crop_format="png"), NullReporter())
    return ws


def store_files(ws):
    folder = samples.store_dir(ws)
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def data_inode(ws, name="src"):
    return os.stat(samples.store_dir(ws) / f"{name}_{RES}.u8").st_ino


def assert_same(stored, memory):
    assert isinstance(stored.data, StoredFaces) and isinstance(memory.data, torch.Tensor)
    assert stored.files == memory.files and stored.has_landmarks == memory.has_landmarks
    assert len(stored) == len(memory) and tuple(stored.data.shape) == tuple(memory.data.shape)
    assert torch.equal(stored.data[:len(stored)], memory.data)
    index = torch.randperm(len(memory))[:9]
    assert torch.equal(stored.data.index_select(0, index), memory.data.index_select(0, index))


def test_the_store_holds_the_same_faces_and_follows_every_change(extracted):
    ws = extracted
    memory = samples.load_side(ws, "src", RES, in_memory=True)
    assert memory.has_landmarks and len(memory) > 20
    built = []
    stored = samples.load_side(ws, "src", RES, progress=lambda done, total: built.append(done))
    assert built and built[-1] == len(memory)
    assert_same(stored, memory)
    assert store_files(ws) == [f"src_{RES}.json", f"src_{RES}.u8"]
    inode = data_inode(ws)

    built.clear()  # unchanged: opened, not rebuilt
    again = samples.load_side(ws, "src", RES, progress=lambda done, total: built.append(done))
    assert not built and data_inode(ws) == inode and again.files == stored.files

    crops = [ws.side_dir("src") / f for f in memory.files]
    crops[3].unlink()  # a crop deleted by the user
    fewer = samples.load_side(ws, "src", RES)
    assert len(fewer) == len(memory) - 1 and str(crops[3]) not in fewer.files
    assert_same(fewer, samples.load_side(ws, "src", RES, in_memory=True))

    image = cv2.imread(str(crops[5]))  # a crop replaced (same name, new pixels)
    cv2.imwrite(str(crops[5]), np.ascontiguousarray(image[:, ::-1]))
    replaced = samples.load_side(ws, "src", RES)
    assert_same(replaced, samples.load_side(ws, "src", RES, in_memory=True))
    row = replaced.files.index(str(crops[5]))
    assert not torch.equal(replaced.data[row], fewer.data[fewer.files.index(str(crops[5]))])

    data = samples.store_dir(ws) / f"src_{RES}.u8"  # a store cut short (disk trouble): rebuilt
    with open(data, "r+b") as handle:
        handle.truncate(data.stat().st_size - 100)
    assert_same(samples.load_side(ws, "src", RES), samples.load_side(ws, "src", RES, in_memory=True))


def test_a_folder_store_follows_added_faces(tmp_path, extracted):
    folder = tmp_path / "pretrain"
    folder.mkdir()
    crops = sorted(extracted.aligned_dir("src").iterdir())[:10]
    for crop in crops:
        shutil.copy(crop, folder / crop.name)
    store = tmp_path / "stores"
    first = samples.load_folder(folder, RES, store)
    assert len(first) == 10 and not first.has_landmarks
    shutil.copy(crops[0], folder / "zz-added.png")
    more = samples.load_folder(folder, RES, store)
    assert len(more) == 11 and str(folder / "zz-added.png") in more.files
    assert_same(more, samples.load_folder(folder, RES))
    assert torch.equal(more.data[10], more.data[0])


BUILDER = """
import sys
from pathlib import Path
from engine.train import samples
samples.load_folder(Path(sys.argv[1]), 64, Path(sys.argv[2]), progress=lambda done, total: print(done, flush=True))
"""


def test_a_build_killed_mid_way_leaves_no_store_that_looks_whole(tmp_path, extracted):
    """kill -9 while the rows are being written: no manifest, no data file (a temp at most, removed by
    the next build), and the next load builds the store whole."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for copy in range(8):
        for crop in sorted(extracted.aligned_dir("src").iterdir()):
            shutil.copy(crop, folder / f"{copy}-{crop.name}")
    store = tmp_path / "stores"
    proc = subprocess.Popen([sys.executable, "-c", BUILDER, str(folder), str(store)], stdout=subprocess.PIPE,
                            text=True, cwd=REPO)
    first = proc.stdout.readline()  # one chunk of rows written: the build is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert first.strip().isdigit() and int(first) < 8 * 75
    left = sorted(p.name for p in store.iterdir() if not p.name.endswith(".lock"))
    assert all(name.endswith(".tmp") for name in left), left
    whole = samples.load_folder(folder, RES, store)
    assert not [p for p in store.iterdir() if p.name.endswith(".tmp")]
    assert_same(whole, samples.load_folder(folder, RES))
