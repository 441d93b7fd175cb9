"""``swapwizard verify FILE [--json]``: read any file's Content Credentials (C2PA), ours or anyone's.

Says whether the file is signed, by whom, what actions its manifest records (and whether they say AI
made or changed it), whether its content still matches the signature (an edited file says so) and
whether the signer is trusted. ``--trust PEM`` adds trust anchors (a CA you know, or swapwizard's own
``local-ca.pem``). Exit codes: 0 signed and intact, 1 unsigned, changed or an invalid signature, 2 bad
usage. No engine is needed; nothing heavy is imported (the c2pa library loads its Rust core only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from tui.cli.app import app
from tui.cli.common import EXIT_DONE, EXIT_FAILED, fail, out

#: The organisation of swapwizard's local identity (engine.media.credentials.LOCAL_ORG; not imported at
#: module load so ``swapwizard --help`` stays light).
LOCAL_ORG = "swapwizard local identity"

_SOURCE_TYPE_WORDS = {
    "compositeWithTrainedAlgorithmicMedia": "composite with trained algorithmic media (AI edit, e.g. a face swap)",
    "trainedAlgorithmicMedia": "trained algorithmic media (made by AI)",
    "algorithmicMedia": "algorithmic media",
    "compositeSynthetic": "composite of synthetic elements",
    "digitalCapture": "digital capture (camera)",
    "digitalCreation": "digital creation",
    "composite": "composite",
}


C2PA_HELP = ("Sign the exported files with Content Credentials (C2PA; default). --no-c2pa exports without them "
             "(the metadata label stays; the result says so).")
C2PA_CERT_HELP = "Signing certificate chain (PEM) for this export, over [c2pa] cert in workspace.toml."
C2PA_KEY_HELP = "Its private key (PEM), over [c2pa] key."


def c2pa_params(enabled: bool, cert: str | None, key: str | None) -> dict[str, Any]:
    """The Content Credentials parameters of a merge, run or compare job (paths made absolute here: the
    engine reads paths relative to the workspace, the user typed them relative to this folder)."""
    params: dict[str, Any] = {} if enabled else {"c2pa": False}
    for name, value in (("c2pa_cert", cert), ("c2pa_key", key)):
        if value:
            params[name] = str(Path(value).expanduser().absolute())
    return params


def source_type_words(uri: str | None) -> str:
    name = str(uri or "").rsplit("/", 1)[-1]
    return _SOURCE_TYPE_WORDS.get(name, name or "not given")


def report_lines(found: dict[str, Any]) -> list[str]:
    """The human-readable report of ``read_credentials``' answer (rich markup)."""
    from engine.media.credentials import verdict

    lines = [f"[b]{escape(found['path'])}[/b]", escape(verdict(found))]
    if not found.get("signed") or found.get("error"):
        if found.get("xmp_source_type"):
            lines.append(f"XMP DigitalSourceType (unsigned): {source_type_words(found['xmp_source_type'])}")
        if str(found.get("error") or "").startswith("this kind of file cannot be read"):
            lines.append("[dim]hint:[/dim] verify reads videos and pictures (MP4, MOV, PNG, JPEG, WebP ...), such as "
                         "the output/result.mp4 that swapwizard merge writes.")
        elif found.get("error"):
            lines.append("[dim]hint:[/dim] the file may be cut short or damaged: compare it with the copy it came from.")
        return lines
    who = found.get("signer") or "unknown"
    if found.get("issuer"):
        who += f" (issued by {found['issuer']})"
    lines.append(f"Signed by:  {escape(who)}")
    if found.get("local_identity"):
        lines.append("            this machine's local swapwizard identity")
    if found.get("signed_at"):
        lines.append(f"Signed at:  {found['signed_at']}")
    lines.append("Signature:  " + ("valid" if found["signature_valid"] else "[red]INVALID[/red]"))
    lines.append("Content:    " + ("intact: matches what was signed" if found["content_intact"]
                                   else "[red]CHANGED since it was signed[/red]"))
    trust = "trusted" if found["trusted"] else (
        "untrusted: the signer's certificate does not chain to a trusted CA"
        + (" (expected for swapwizard's local identity until \\[c2pa] cert/key name a CA-issued certificate)"
           if found.get("local_identity") or found.get("issuer") == LOCAL_ORG else ""))
    lines.append(f"Trust:      {trust}")
    if found.get("generator"):
        lines.append(f"Tool:       {escape(str(found['generator']))}")
    for action in found.get("actions") or []:
        text = f"Action:     {action['action']}"
        if action.get("digital_source_type"):
            text += f": {source_type_words(action['digital_source_type'])}"
        if action.get("software_agent"):
            text += f", by {action['software_agent']}"
        lines.append(escape(text))
        if action.get("description"):
            lines.append(f"            {escape(str(action['description']))}")
    own = found.get("assertions") or {}
    for model in (own.get("org.swapwizard.model") or {}).get("models") or []:
        lines.append(escape(f"Model:      {model.get('name')} at iteration {model.get('iteration')}"))
    consent = own.get("org.swapwizard.consent") or {}
    if consent.get("date"):
        lines.append(escape(f"Consent:    recorded {consent['date']}"))
    if found.get("xmp_source_type"):
        lines.append(f"XMP:        DigitalSourceType {source_type_words(found['xmp_source_type'])}")
    problems = [f for f in found.get("failures") or [] if f["code"] != "signingCredential.untrusted"]
    for failure in problems:
        lines.append(f"  [red]{escape(failure['code'])}[/red]: {escape(failure['explanation'])}")
    return lines


def exit_code(found: dict[str, Any]) -> int:
    ok = found.get("signed") and not found.get("error") and found["content_intact"] and found["signature_valid"]
    return EXIT_DONE if ok else EXIT_FAILED


@app.command()
def verify(
    file: str = typer.Argument(..., help="The file to check (MP4, PNG, JPEG and other formats C2PA knows)."),
    as_json: bool = typer.Option(False, "--json", help="Print what the credentials say as JSON."),
    trust: Optional[str] = typer.Option(None, "--trust", help="A PEM file of CA certificates to trust as well."),
) -> None:
    """Read a file's Content Credentials: signed or not, by whom, what was done, whether it is intact and trusted."""
    from engine.media.credentials import read_credentials

    path = Path(file).expanduser()
    if not path.is_file():
        fail(f"{file} is not a file.", "Give the path of a video or picture.")
    anchors = None
    if trust:
        try:
            anchors = Path(trust).expanduser().read_bytes()
        except OSError as exc:
            fail(f"The trust file {trust} could not be read: {exc.strerror}.", "Give a PEM file of CA certificates.")
    found = read_credentials(path, trust_pem=anchors)
    if as_json:
        out.print_json(json.dumps(found))
    else:
        for line in report_lines(found):
            out.print(line, markup=True)
    raise typer.Exit(exit_code(found))
