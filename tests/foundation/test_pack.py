"""pack / unpack: a workspace or a model moves as one archive; unsafe archives are refused."""

from __future__ import annotations

import io
import tarfile

import pytest

from engine.errors import UserError
from engine.pack import pack, unpack
from engine.workspace import Workspace
from tests.helpers import SAMPLES, tar_of


def test_pack_and_unpack_a_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    ws.set_step("extract_src", "done")
    (ws.state_dir / "run").mkdir(exist_ok=True)
    (ws.state_dir / "engine.pid").write_text("123\n")
    archive = pack(ws, tmp_path / "ws.tar.gz")
    moved = Workspace.open(unpack(archive, tmp_path / "elsewhere" / "copy"))
    assert moved.source("dst").read_bytes() == (SAMPLES / "dst.mp4").read_bytes()
    assert moved.steps()["extract_src"]["status"] == "done"
    assert not (moved.state_dir / "engine.pid").exists()
    with pytest.raises(UserError, match="already exists"):
        unpack(archive, tmp_path / "elsewhere" / "copy")
    with pytest.raises(UserError, match="already exists"):
        pack(ws, archive)


def test_pack_follows_linked_sources(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", link=True)
    assert (ws.root / "data_src.mp4").is_symlink()
    moved = Workspace.open(unpack(pack(ws, tmp_path / "a.tgz"), tmp_path / "b"))
    assert not (moved.root / "data_src.mp4").is_symlink()
    assert moved.source("src").stat().st_size == (SAMPLES / "src.mp4").stat().st_size


def test_model_only_archive(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    model = ws.model_dir("liae")
    model.mkdir(parents=True)
    (model / "weights.safetensors").write_bytes(b"w" * 100)
    archive = pack(ws, tmp_path / "model.tgz", model="liae")
    other = Workspace.create(tmp_path / "other")
    unpack(archive, other.root)
    assert (other.model_dir("liae") / "weights.safetensors").read_bytes() == b"w" * 100
    with pytest.raises(UserError, match="already has a model"):
        unpack(archive, other.root)


def _evil_archive(path, member_name, kind=tarfile.REGTYPE, linkname=""):
    with tarfile.open(path, "w:gz") as tar:
        config = tarfile.TarInfo("ws/workspace.toml")
        config.size = 0
        tar.addfile(config, io.BytesIO(b""))
        info = tarfile.TarInfo(member_name)
        info.type = kind
        info.linkname = linkname
        data = b"owned"
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return path


@pytest.mark.parametrize("name, kind, link", [
    ("ws/../../escaped.txt", tarfile.REGTYPE, ""),
    ("/tmp/absolute.txt", tarfile.REGTYPE, ""),
    ("ws/link", tarfile.SYMTYPE, "/etc/passwd"),
    ("ws/hard", tarfile.LNKTYPE, "ws/workspace.toml"),
])
def test_unsafe_entries_are_refused(tmp_path, name, kind, link):
    archive = _evil_archive(tmp_path / "evil.tgz", name, kind, link)
    with pytest.raises(UserError, match="nothing was unpacked"):
        unpack(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "x.tgz"
    bogus.write_bytes(b"hello")
    with pytest.raises(UserError, match="not a swapwizard archive"):
        unpack(bogus, tmp_path / "t")


@pytest.mark.parametrize("entries", [
    [("ws/workspace.toml", b""), ("ws/a", b"file"), ("ws/a/b", b"inside a file")],
    [("ws/workspace.toml", b""), ("ws/a", None), ("ws/a", b"a file over a folder")],
    [("ws/workspace.toml", b""), ("ws/a/b", b"x"), ("ws/a", b"a file over an implied folder")],
])
def test_file_and_folder_of_one_name_is_one_sentence(tmp_path, entries):
    archive = tar_of(tmp_path / "clash.tgz", entries)
    with pytest.raises(UserError, match="both a file and a folder named 'ws/a'; nothing was unpacked"):
        unpack(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["clash.tgz"]  # no staging folder left


def test_unpack_limits_size_and_entries(tmp_path):
    # 200 kB of zeros compresses to a few hundred bytes: the limit is on what it unpacks to.
    archive = tar_of(tmp_path / "big.tgz", [("ws/workspace.toml", b""), ("ws/zeros", bytes(200_000))])
    assert archive.stat().st_size < 2_000
    with pytest.raises(UserError, match="more than 0.1 MB; nothing was unpacked") as refused:
        unpack(archive, tmp_path / "t", max_bytes=100_000)
    assert "--max-gb" in refused.value.hint
    many = tar_of(tmp_path / "many.tgz", [("ws/workspace.toml", b"")] + [(f"ws/f{i}", b"") for i in range(50)])
    with pytest.raises(UserError, match="more than 20 entries"):
        unpack(many, tmp_path / "t", max_entries=20)
    assert not (tmp_path / "t").exists()
    # Within the limits both unpack.
    assert (unpack(archive, tmp_path / "t", max_bytes=300_000) / "zeros").stat().st_size == 200_000
    assert len(list(unpack(many, tmp_path / "u").iterdir())) == 51


def test_cut_short_archive_is_one_sentence(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4")
    archive = pack(ws, tmp_path / "ws.tgz")
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(UserError, match="nothing was unpacked"):
        unpack(cut, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("audio", ["/home/someone/voice.m4a", "~/voice.m4a", "../voice.m4a"])
def test_an_archive_whose_audio_names_a_file_outside_arrives_without_it(tmp_path, audio):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    ws.update_settings("merge", {"audio": audio})
    heard: list[str] = []
    moved = Workspace.open(unpack(pack(ws, tmp_path / "ws.tar.gz"), tmp_path / "copy", notice=heard.append))
    assert moved.section("merge")["audio"] == ""  # the destination's sound, as a new workspace has
    assert len(heard) == 1 and f"[merge] audio = {audio!r}" in heard[0]
    assert not list(tmp_path.glob(".unpack-*"))


def test_an_archive_whose_audio_is_inside_unpacks(tmp_path):
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    ws.update_settings("merge", {"audio": "sound/voice.m4a"})
    moved = Workspace.open(unpack(pack(ws, tmp_path / "ws.tar.gz"), tmp_path / "copy"))
    assert moved.section("merge")["audio"] == "sound/voice.m4a"
