"""Content Credentials: every export carries a signed C2PA manifest that says it is synthetic.

One module-scoped workspace runs ``swapwizard run WS --preset tiny`` on the sample pair (real
extraction, a few iterations of a tiny model, merge, export with the mask video and PNG frames), with
its own folder for the local signing identity. The tests read the results back with the c2pa library
on its own and with ``swapwizard verify``, flip a byte of the picture data, export again with
``--no-c2pa`` and with a bad certificate.
"""

from __future__ import annotations

import json
import shutil
import stat
import struct

import c2pa
import numpy as np
import pytest

from engine.errors import UserError
from engine.media import credentials as cr
from engine.media.encode import VideoWriter, png_text, png_with_text, synthetic_label, temp_name
from engine.report import CallbackReporter
from tests.helpers import cli, make_workspace, stop_engine
from tests.merge.test_encode import describe
from tests.merge.test_merge_job import TINY_TRAIN

NOTICE = "Created a local Content Credentials signing identity"


def _reader(path, trust: bytes | None = None) -> dict:
    """(state, failure codes, active manifest) read by the c2pa library itself, offline."""
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust:
        settings["trust"] = {"user_anchors": trust.decode()}
    with c2pa.Context.from_dict(settings) as context, c2pa.Reader(str(path), context=context) as reader:
        results = reader.get_validation_results() or {}
        return {"state": reader.get_validation_state(), "manifest": reader.get_active_manifest(),
                "failures": [f["code"] for f in (results.get("activeManifest") or {}).get("failure") or []]}


def _assertion(manifest: dict, label: str) -> dict:
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


@pytest.fixture(scope="module")
def signed_ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("c2pa")
    env = {"SWAPWIZARD_C2PA_DIR": str(base / "identity")}
    ws = make_workspace(base / "ws")
    ws.record_consent("tests")
    ws.update_settings("extract", {"size": 128, "crop_format": "png"})
    ws.update_settings("train", TINY_TRAIN)
    ws.update_settings("merge", {"png": True, "mask_video": True})
    try:
        result = cli("run", str(ws.root), "--preset", "tiny", "--iters", "4", timeout=480, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        yield ws, env, base / "identity", result.stdout + result.stderr
    finally:
        stop_engine(ws)


@pytest.mark.timeout(600)
def test_the_result_carries_a_signed_manifest_that_says_it_is_synthetic(signed_ws):
    ws, env, identity, output = signed_ws
    result = ws.output_dir / "result.mp4"
    found = _reader(result)
    # Signed, intact, and untrusted only because the local identity chains to no trust anchor.
    assert found["state"] == "Valid" and found["failures"] == ["signingCredential.untrusted"]
    manifest = found["manifest"]
    assert manifest["signature_info"]["common_name"] == cr.LOCAL_CN
    [action] = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == cr.SOURCE_TYPE
    assert action["softwareAgent"]["name"] == "swapwizard" and "face" in action["description"]
    assert action["parameters"]["org.swapwizard.face_replaced"] is True
    [model] = _assertion(manifest, "org.swapwizard.model")["models"]
    assert model["name"] == "default" and model["iteration"] == 4
    assert _assertion(manifest, "org.swapwizard.consent")["date"] == ws.section("consent")["date"]
    assert cr.xmp_source_type(result) == cr.SOURCE_TYPE
    # The metadata label stays, the file still plays to the end.
    assert "synthetic_media" in describe(result)
    # Trusting the local CA makes the same signature trusted: the chain itself is sound.
    assert _reader(result, trust=(identity / cr.CA_CERT).read_bytes())["state"] == "Trusted"
    # The mask video and every PNG frame are signed too, each under its own name.
    for path in [ws.output_dir / "result_mask.mp4", *sorted((ws.output_dir / "frames").glob("*.png"))[:3]]:
        other = _reader(path)
        assert other["state"] == "Valid", path
        assert other["manifest"]["title"] == path.name
        assert _assertion(other["manifest"], "c2pa.actions.v2")["actions"][0]["digitalSourceType"] == cr.SOURCE_TYPE
    png = sorted((ws.output_dir / "frames").glob("*.png"))[0]
    assert png_text(png.read_bytes())["synthetic_media"] == "true" and cr.xmp_source_type(png) == cr.SOURCE_TYPE
    # The job said once where the new identity is and that verifiers show it as untrusted.
    assert output.count(NOTICE) == 1 and "untrusted" in output
    assert not list(ws.output_dir.glob(".*.part"))


@pytest.mark.timeout(600)
def test_verify_reads_it_and_detects_a_flipped_byte_in_the_picture(signed_ws, tmp_path):
    ws, env, identity, _ = signed_ws
    result = ws.output_dir / "result.mp4"
    shown = cli("verify", str(result), env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "content intact" in shown.stdout and "untrusted" in shown.stdout
    assert "composite with trained algorithmic media" in shown.stdout and "local swapwizard identity" in shown.stdout
    as_json = json.loads(cli("verify", str(result), "--json", env=env).stdout)
    assert as_json["signed"] and as_json["content_intact"] and as_json["signature_valid"]
    assert not as_json["trusted"] and as_json["ai_generated"] and as_json["local_identity"]

    # The wizard's Export step shows the same reading under the result.
    from tui.screens.export import result_text

    text = result_text(ws.root, {"output": "output/result.mp4"}, {"synthetic_media": "true"}, as_json)
    assert "Credentials:[/b] signed by swapwizard local signer, content intact, untrusted (local identity)" in text
    assert "composite with trained algorithmic media" in text and "swapwizard verify" in text

    # One byte of the coded pictures (inside the mdat box) flipped: the hash no longer matches.
    edited = tmp_path / "edited.mp4"
    shutil.copyfile(result, edited)
    data = bytearray(edited.read_bytes())
    pos = 0
    while data[pos + 4:pos + 8] != b"mdat":
        pos += struct.unpack(">I", data[pos:pos + 4])[0]
    size = struct.unpack(">I", data[pos:pos + 4])[0]
    data[pos + size // 2] ^= 0x01
    edited.write_bytes(bytes(data))
    changed = cli("verify", str(edited), "--json", env=env)
    assert changed.returncode == 1
    report = json.loads(changed.stdout)
    assert report["signed"] and not report["content_intact"]
    assert any(f["code"] == "assertion.bmffHash.mismatch" for f in report["failures"])
    assert "CHANGED since it was signed" in cli("verify", str(edited), env=env).stdout
    assert "content changed since signing" in result_text(tmp_path, {"output": "edited.mp4"}, {}, report)
    # A file without credentials says so (and fails, exit 1).
    plain = cli("verify", str(ws.source("dst")), env=env)
    assert plain.returncode == 1 and "No Content Credentials" in plain.stdout


@pytest.mark.timeout(600)
def test_a_bad_certificate_fails_at_once_in_one_sentence(signed_ws, tmp_path):
    ws, env, _, _ = signed_ws
    before = (ws.output_dir / "result.mp4").read_bytes()
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    failed = cli("merge", str(ws.root), "--c2pa-cert", str(tmp_path / "cert.pem"), "--c2pa-key",
                 str(tmp_path / "key.pem"), env=env)
    assert failed.returncode != 0
    assert "is not a PEM certificate" in failed.stderr and "--no-c2pa" in failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout
    assert (ws.output_dir / "result.mp4").read_bytes() == before


@pytest.mark.timeout(600)
def test_no_c2pa_exports_unsigned_and_says_so(signed_ws):
    ws, env, _, _ = signed_ws
    done = cli("merge", str(ws.root), "--no-c2pa", "--no-png", "--no-mask-video", timeout=420, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Content Credentials are off (--no-c2pa)" in done.stdout + done.stderr
    result = ws.output_dir / "result.mp4"
    assert not cr.read_credentials(result)["signed"]
    assert "synthetic_media" in describe(result)  # the metadata label stays
    record = ws.steps()["merge"]
    assert record["status"] == "done" and record["result"]["credentials"]["signed"] is False
    assert "--no-c2pa" in record["result"]["content_credentials"]
    assert NOTICE not in done.stdout + done.stderr


def test_the_local_identity_is_made_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPWIZARD_C2PA_DIR", str(tmp_path / "id"))
    first = cr.local_identity()
    assert first.created and first.local and first.alg == "es256"
    assert stat.S_IMODE(first.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.cert_path.parent.stat().st_mode) == 0o700
    again = cr.local_identity()
    assert not again.created and again.cert_pem == first.cert_pem and again.key_pem == first.key_pem
    # Without the override it follows XDG_CONFIG_HOME (never the real ~/.config in tests).
    monkeypatch.delenv("SWAPWIZARD_C2PA_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cr.identity_dir() == tmp_path / "xdg" / "swapwizard" / "c2pa"


def test_a_users_ca_certificate_signs_and_verifies_as_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPWIZARD_C2PA_DIR", str(tmp_path / "unused"))
    chain, key, ca = cr._make_local_identity()  # a CA and a certificate it issued, as a user would bring
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    credentials = cr.Credentials(cr.user_identity(tmp_path / "chain.pem", tmp_path / "key.pem"))
    credentials.check()
    out = tmp_path / "sheet.png"
    out.write_bytes(png_with_text(np.zeros((16, 16, 3), np.uint8), synthetic_label(), credentials=credentials,
                                  title=out.name))
    assert not cr.read_credentials(out)["trusted"]
    trusted = cr.read_credentials(out, trust_pem=ca)
    assert trusted["trusted"] and trusted["content_intact"] and not trusted["local_identity"]
    assert not (tmp_path / "unused").exists()  # a user's certificate never creates the local identity
    # A key that is not the certificate's is refused in one sentence.
    other = cr._make_local_identity()[1]
    (tmp_path / "other.pem").write_bytes(other)
    with pytest.raises(UserError, match="does not belong to the certificate"):
        cr.user_identity(tmp_path / "chain.pem", tmp_path / "other.pem")


def test_a_signing_failure_leaves_no_file(tmp_path, monkeypatch):
    """A time-stamp server that cannot be reached: the export fails with a sentence, nothing is left."""
    monkeypatch.setenv("SWAPWIZARD_C2PA_DIR", str(tmp_path / "id"))
    credentials = cr.Credentials(cr.local_identity(), timestamp_url="http://127.0.0.1:9/")
    out = tmp_path / "side_by_side.mp4"
    with pytest.raises(UserError) as caught:
        with VideoWriter(out, 64, 48, 25, label=synthetic_label(), credentials=credentials) as writer:
            for value in range(5):
                writer.write(np.full((48, 64, 3), value * 40, np.uint8))
    assert "time-stamp server" in caught.value.message and "--no-c2pa" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["id"]
    assert not out.exists() and not temp_name(out).exists()


def test_a_full_disk_while_signing_is_said_and_leaves_no_file(tmp_path, monkeypatch):
    """ffmpeg finishes the video, the signed copy does not fit: one sentence, and nothing under any name."""
    import subprocess

    monkeypatch.setenv("SWAPWIZARD_C2PA_DIR", str(tmp_path / "id"))
    credentials = cr.Credentials(cr.local_identity())
    folder = tmp_path / "tiny"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("needs permission to mount a tiny tmpfs (root)")
    try:
        out = folder / "result.mp4"
        rng = np.random.default_rng(0)
        with pytest.raises(UserError) as caught:
            with VideoWriter(out, 64, 64, 25, crf=0, label=synthetic_label(), credentials=credentials) as writer:
                for _ in range(6):  # about 40 KB: ffmpeg's file fits, a second, signed copy does not
                    writer.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        assert caught.value.message == "The disk is full: result.mp4 could not be signed with Content Credentials."
        assert "--no-c2pa" in caught.value.hint
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_the_optional_assertions_follow_the_workspace_settings(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("SWAPWIZARD_C2PA_DIR", str(tmp_path / "id"))
    workspace.record_consent("tests")
    models = [{"name": "default", "iteration": 7}]
    labels = [a["label"] for a in cr.for_workspace(workspace, models=models).manifest("r.mp4", "video/mp4")["assertions"]]
    assert labels == ["c2pa.actions.v2", "org.swapwizard.model", "org.swapwizard.consent"]
    workspace.update_settings("c2pa", {"model_info": False, "consent_date": False})
    labels = [a["label"] for a in cr.for_workspace(workspace, models=models).manifest("r.mp4", "video/mp4")["assertions"]]
    assert labels == ["c2pa.actions.v2"]
    # A certificate without its key (or the reverse) is one sentence; paths are relative to the workspace.
    chain, key, _ = cr._make_local_identity()
    (workspace.root / "chain.pem").write_bytes(chain)
    workspace.update_settings("c2pa", {"cert": "chain.pem"})
    with pytest.raises(UserError, match=r"\[c2pa\] key is not set"):
        cr.for_workspace(workspace)
    (workspace.root / "key.pem").write_bytes(key)
    workspace.update_settings("c2pa", {"key": "key.pem"})
    credentials = cr.for_workspace(workspace)
    assert not credentials.identity.local and credentials.identity.cert_path == workspace.root / "chain.pem"
    # --no-c2pa: no credentials, and the events say so.
    events: list[dict] = []
    assert cr.for_workspace(workspace, CallbackReporter(events.append), enabled=False) is None
    assert [(e["level"], "--no-c2pa" in e["message"]) for e in events] == [("warning", True)]
