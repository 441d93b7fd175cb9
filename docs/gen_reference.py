"""The documentation's reference pages, made from the declarations each time the site is built (an
mkdocs hook, named in mkdocs.yml), so they cannot drift from the code:

- reference/cli.md: every ``swapwizard`` command and option, from the typer commands of tui/cli/;
- reference/settings.md: every ``workspace.toml`` setting (engine/settings.py) and every training
  preset (engine/train/options.py);
- reference/jobs.md: every job kind, from its declaration (``JOB = JobKind(...)`` in engine/jobs/).

``.venv/bin/python docs/gen_reference.py OUT_DIR`` writes them to a folder to read without mkdocs.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer
import typer.main

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from engine import settings as declared  # noqa: E402
from engine.jobs import job_kinds  # noqa: E402
from engine.train.options import DEFAULT_PRESET, PRESETS  # noqa: E402
from tui.cli import app  # noqa: E402

HEAD = "<!-- Made by docs/gen_reference.py from the {what} when the site is built. -->\n\n"


def cell(text: object) -> str:
    """``text`` as one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text: object) -> str:
    return f"`{text}`" if str(text) != "" else ""


def _param_row(param, ctx) -> str:
    """One row: the option as ``--help`` shows it, and its help with the default and range click adds."""
    record = param.get_help_record(ctx) if param.param_type_name != "argument" else None
    if record is None:
        name = (param.metavar or param.name or "").upper()
        return f"| `{name}` | {cell(getattr(param, 'help', None) or '')}{'' if param.required else ' (optional)'} |"
    return f"| `{cell(record[0])}` | {cell(record[1])} |"


def _command(path: list[str], command, out: list[str]) -> None:
    level = "#" * min(len(path) + 1, 4)
    out.append(f"{level} swapwizard {' '.join(path)}\n")
    if command.help:
        out.append(command.help.strip().replace("\b\n", "") + "\n")
    if hasattr(command, "list_commands"):  # a group: typer's commands are its own click's, so by duck type
        for name in command.list_commands(typer.Context(command)):
            sub = command.get_command(typer.Context(command), name)
            if sub is not None and not sub.hidden:
                _command([*path, name], sub, out)
        return
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    usage = " ".join(command.collect_usage_pieces(typer.Context(command)))
    out.append(f"```\nswapwizard {' '.join(path)} {usage}\n```\n")
    if params:
        out.append("| argument or option | help |\n|---|---|")
        out.extend(_param_row(p, typer.Context(command)) for p in params)
        out.append("")


def cli_reference() -> str:
    group = typer.main.get_command(app)
    out = [HEAD.format(what="CLI's commands (tui/cli/)") + "# Command reference\n",
           "`swapwizard [WS]` opens the wizard; `swapwizard COMMAND --help` prints the same as below. "
           "Exit codes: 0 done, 1 job failed or cancelled, 2 bad usage or input.\n"]
    for name in group.list_commands(typer.Context(group)):
        command = group.get_command(typer.Context(group), name)
        if command is not None and not command.hidden:
            _command([name], command, out)
    return "\n".join(out).rstrip() + "\n"


def _limits(setting: declared.Setting) -> str:
    if setting.choices:
        return ", ".join(code(c) for c in setting.choices)
    if setting.range is not None:
        return cell(setting.range_words())
    return ""


def settings_reference() -> str:
    out = [HEAD.format(what="declarations (engine/settings.py, engine/train/options.py)") + "# Settings reference\n",
           "Every key of a workspace's `workspace.toml`, declared once in `engine/settings.py`: the template, the "
           "CLI options, the job parameters and the wizard's forms come from the same declaration "
           "([how to add one](../settings.md)). A value outside its range or choices is refused in one sentence "
           "before anything runs.\n",
           "## Training presets\n",
           f"Declared in `engine/train/options.py`. A new model starts from its preset ({code(DEFAULT_PRESET)} unless "
           "`--preset` or `[train] preset` says otherwise); keys set in `[train]` or on the command line win over "
           "it, and the `[train]` defaults below are the default preset's.\n",
           "| preset | resolution | architecture | dims (ae/e/d/d_mask) | batch | learning rate | target | what for |",
           "|---|---|---|---|---|---|---|---|"]
    for name, preset in PRESETS.items():
        m = preset.model
        dims = f"{m.ae_dims}/{m.e_dims}/{m.d_dims}/{m.d_mask_dims}"
        target = f"{preset.iters:,}".replace(",", " ")
        out.append(f"| {code(name)} | {m.resolution} px | {m.arch} | {dims} | {preset.train.batch_size} | "
                   f"{preset.train.lr:g} | {target} | {cell(preset.description)} |")
    out.append("")
    for section in declared.sections():
        out.append(f"## [{section}]\n")
        if section in declared.SECTION_HELP:
            out.append(cell(declared.SECTION_HELP[section]) + "\n")
        out.append("| key | type | default | allowed | CLI option | help |\n|---|---|---|---|---|---|")
        for s in declared.of(section):
            option = code(s.option) if s.cli else ""
            out.append(f"| {code(s.key)} | {s.type.__name__} | {code(declared.toml_value(s.default))} | "
                       f"{_limits(s)} | {option} | {cell(s.help)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def jobs_reference() -> str:
    out = [HEAD.format(what="job kinds' declarations (engine/jobs/)") + "# Job kinds reference\n",
           "Every kind of job the engine runs (`submit {kind, params}`), declared once at the end of its module in "
           "`engine/jobs/` ([how to add one](../architecture.md#how-to-add-a-job-kind)). The engine publishes "
           "these declarations in its `status` (`jobs`), and the wizard draws, stops and lands on each kind from "
           "them. *Lane* `interactive`: a short job run beside the main queue; *steps*: the workspace steps the "
           "engine marks around it (*managed*: the job marks them itself); *screens*: the wizard screens that "
           "draw it.\n",
           "| kind | what | lane | steps | screens | Stop (x) | consent | parameters |",
           "|---|---|---|---|---|---|---|---|"]
    for kind, job in sorted(job_kinds().items()):
        steps = "by its parameters" if callable(job.steps) else ", ".join(job.steps)
        if job.managed_steps:
            steps = f"managed: {', '.join(job.managed_steps)}"
        params = ", ".join(code(f.name) for f in dataclasses.fields(job.params))
        out.append(f"| {code(kind)} | {cell(job.label)} | {job.lane} | {cell(steps)} | {', '.join(job.screens)} | "
                   f"{'yes' if job.stoppable else ''} | {'yes' if job.consent else 'no'} | {params} |")
    return "\n".join(out).rstrip() + "\n"


PAGES = {"reference/cli.md": cli_reference, "reference/settings.md": settings_reference,
         "reference/jobs.md": jobs_reference}


def on_files(files, config):  # the mkdocs hook: the pages join the site as if they were in docs/
    from mkdocs.structure.files import File

    for name, build in PAGES.items():
        files.append(File.generated(config, name, content=build()))
    return files


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for name, build in PAGES.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(build(), encoding="utf-8")
        print(out / name)
