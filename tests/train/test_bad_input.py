"""Bad input to training: one clear sentence and a hint, never a traceback."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.jobs import get_kind
from engine.jobs.train import Params, run
from engine.report import NullReporter
from tests.helpers import cli, make_workspace


def test_training_before_extraction_says_what_to_do(tmp_path):
    ws = make_workspace(tmp_path / "fresh")
    with pytest.raises(UserError) as caught:
        run(ws, Params(preset="tiny", iters=2), NullReporter())
    assert "no src faces" in caught.value.message and "swapwizard extract" in caught.value.hint


def test_bad_parameters_are_refused_by_the_job_contract():
    kind = get_kind("train")
    with pytest.raises(UserError, match="whole number"):
        kind.parse_params({"iters": "lots"})
    with pytest.raises(UserError, match="Unknown parameter"):
        kind.parse_params({"iterations": 5})
    assert kind.steps(kind.parse_params({})) == ["train"]
    assert kind.steps(kind.parse_params({"pretrain_faces": "/faces"})) == []


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "[train] preset = 'huge' (--preset) is not one of the choices."),
    (["--iters", "-5"], "[train] iters = -5 (--iters) is out of range."),
    (["--gpus", "0"], "--gpus must be at least 1."),
])
def test_cli_rejects_bad_options_with_exit_2(tmp_path, args, message):
    ws = make_workspace(tmp_path / "ws")
    proc = cli("train", str(ws.root), *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_colour_transfer_and_device_are_user_errors(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(UserError, match=r"\[train\] colour_transfer = 'lct' \(the request\) is not one of"):
        run(ws, Params(preset="tiny", colour_transfer="lct"), NullReporter())
    from engine.train.device import pick_device

    with pytest.raises(UserError):
        pick_device("tpu")
    with pytest.raises(UserError):
        pick_device("cuda:7")


def test_a_checkpoint_that_cannot_be_written_is_a_clear_error_and_leaves_nothing_half_written(train_ws):
    import json
    import subprocess
    import sys

    from tests.helpers import REPO
    from tests.train.conftest import as_dict, tiny_params

    # A file-size limit makes every larger write fail with EFBIG, as a full disk fails with ENOSPC.
    code = ("import json, resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
            "from engine.errors import UserError\n"
            "from engine.jobs import parse_params\n"
            "from engine.jobs.train import Params, run\n"
            "from engine.report import NullReporter\n"
            "from engine.workspace import Workspace\n"
            "try:\n"
            "    run(Workspace.open(sys.argv[1]), parse_params(Params, json.loads(sys.argv[2])), NullReporter())\n"
            "except UserError as exc:\n"
            "    print(json.dumps({'message': exc.message, 'hint': exc.hint}))\n")
    params = as_dict(tiny_params("no-space", iters=2))
    proc = subprocess.run([sys.executable, "-c", code, str(train_ws.root), json.dumps(params)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    error = json.loads(proc.stdout.strip().splitlines()[-1])
    assert error["message"].startswith("Could not write a checkpoint") and "disk space" in error["hint"]
    folder = train_ws.model_dir("no-space") / "checkpoints"
    assert list(folder.iterdir()) == []  # neither a half-written checkpoint nor a temporary folder
