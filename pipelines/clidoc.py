"""``docs/cli.md``: the command-line reference, generated from the argparse parser of ``akhbar``.

    python -m akhbar.pipelines.clidoc > docs/cli.md

``tests/test_cli.py`` fails when the file and the parser disagree, so the reference cannot drift
from the code: change an option in ``pipelines/cli.py``, then run the command above.
"""
from __future__ import annotations

import argparse

from akhbar.pipelines.cli import BEAM_NOTE, DESCRIPTION, EXAMPLES, EXIT_CODES, _parser

TAKES_BEAM_OPTIONS = {"run", "sample", "replay"}


def _subcommands(ap: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand of ``ap``, in the order they were added."""
    for action in ap._actions:  # noqa: SLF001 - argparse keeps its actions here; no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {a.dest: a.help for a in action._choices_actions}  # noqa: SLF001
            return [(name, helps.get(name, ""), parser) for name, parser in action.choices.items()]
    return []


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices:
        return "|".join(str(c) for c in action.choices)
    return action.metavar or action.dest.upper()


def _usage(path: str, ap: argparse.ArgumentParser) -> str:
    parts = [f"akhbar {path}"]
    optional = False
    for action in ap._actions:  # noqa: SLF001
        if isinstance(action, argparse._HelpAction):  # noqa: SLF001
            continue
        if not action.option_strings:
            parts.append(f"[{_value(action)}]" if action.nargs == "?" else _value(action))
        elif action.required:
            parts.append(f"{action.option_strings[-1]} {_value(action)}".strip())
        else:
            optional = True
    if optional:
        parts.append("[options]")
    if path in TAKES_BEAM_OPTIONS:
        parts.append("[Beam options]")
    return " ".join(parts)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _options_table(ap: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | value | default | meaning |", "|---|---|---|---|"]
    for action in ap._actions:  # noqa: SLF001
        if isinstance(action, argparse._HelpAction):  # noqa: SLF001
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{_value(action)}`"
        value = _value(action) if action.option_strings else ""
        if action.required:
            default = "required"
        elif action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            default = "" if action.option_strings or action.nargs == "?" else "required"
        else:
            default = f"`{action.default}`"
        rows.append(f"| {name} | {_cell(f'`{value}`' if value else '')} | {default} | {_cell(action.help or '')} |")
    return rows


def _section(path: str, help_line: str, ap: argparse.ArgumentParser) -> list[str]:
    subs = _subcommands(ap)
    out = [f"## akhbar {path}", ""]
    if subs:
        out += [ap.description or help_line, "", "| subcommand | what it does |", "|---|---|"]
        out += [f"| [`akhbar {path} {name}`](#akhbar-{path}-{name}) | {_cell(h)} |" for name, h, _ in subs]
        out.append("")
        for name, h, sub in subs:
            out += _section(f"{path} {name}", h, sub)
        return out
    out += [" ".join((ap.description or help_line).split()), "", "```", _usage(path, ap), "```", ""]
    out += _options_table(ap) + [""]
    if path in TAKES_BEAM_OPTIONS:
        out += ["Other `--options` go to Beam (see [Beam options](#beam-options)).", ""]
    examples = EXAMPLES.get(path)
    if examples:
        out += ["Examples:", "", "```sh", *examples, "```", ""]
    return out


def cli_reference_markdown() -> str:
    ap = _parser()
    out = [
        "# Command-line reference",
        "",
        "Generated from the argparse parser in `pipelines/cli.py` by",
        "`python -m akhbar.pipelines.clidoc > docs/cli.md`; `tests/test_cli.py` fails when this file and",
        "the parser disagree. `akhbar --help` and `akhbar COMMAND --help` print the same with examples.",
        "",
        " ".join(DESCRIPTION.split()),
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    subs = _subcommands(ap)
    out += [f"| [`akhbar {name}`](#akhbar-{name}) | {_cell(h)} |" for name, h, _ in subs]
    out += ["", "## Exit codes", "", "Every command exits with one of:", "", "| code | meaning |", "|---|---|"]
    out += [f"| {code} | {_cell(text)} |" for code, text in EXIT_CODES]
    out += ["", "Mistakes of the user (a missing or invalid file, a bad value, an output that cannot be "
            "written, an unknown option) are reported in one message on stderr, without a Python traceback, "
            "before anything runs (`tests/test_cli.py` checks each).", "",
            "## Beam options", "", BEAM_NOTE + " Common ones: `--runner DirectRunner|DataflowRunner|PortableRunner`, "
            "`--direct_num_workers N`, `--direct_running_mode in_memory|multi_threading|multi_processing`, and for "
            "Dataflow `--project`, `--region`, `--temp_location`, `--sdk_container_image` (see "
            "[deploy/README.md](../deploy/README.md)).", ""]
    for name, h, sub in subs:
        out += _section(name, h, sub)
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(cli_reference_markdown(), end="")
