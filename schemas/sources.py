"""Loading and validating the sources file.

A bad file fails before anything runs, and every problem names the file, the line, the entry
and what is wrong (all problems at once, not only the first).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from akhbar.schemas.records import Source


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    entry: str | None  # "sources[3] (id: bbc)"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.entry + ': ' if self.entry else ''}{self.message}"


class SourcesError(ValueError):
    """The sources file is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid sources file:\n" + "\n".join(f"  {p}" for p in problems))


def _schema() -> dict:
    return json.loads(resources.files("akhbar.schemas").joinpath("sources.schema.json").read_text("utf-8"))


def _node_at(node: yaml.Node | None, path: list[Any]) -> yaml.Node | None:
    """The YAML node at a JSON path, or the deepest node reached on the way."""
    for key in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            return node
        node = nxt
    return node


def _entry_label(data: Any, path: list[Any]) -> str | None:
    if len(path) >= 2 and path[0] == "sources" and isinstance(path[1], int):
        entry = data["sources"][path[1]]
        sid = entry.get("id") if isinstance(entry, dict) else None
        return f"sources[{path[1]}]" + (f" (id: {sid})" if isinstance(sid, str) else "")
    return None


def _describe(err: jsonschema.ValidationError) -> str:
    field = ".".join(str(p) for p in list(err.absolute_path)[2:]) or None
    if err.validator == "additionalProperties":
        return f"unknown field(s): {err.message.split('(')[-1].rstrip(')')}"
    if err.validator == "pattern" and field == "id":
        return f"id {err.instance!r} must be lowercase letters, digits, '_' or '-'"
    if err.validator == "pattern" and field and field.startswith("feeds"):
        return f"feed {err.instance!r} is not an http(s) URL"
    return f"{field + ': ' if field else ''}{err.message}"


def validate_text(text: str, file: str = "<sources>") -> tuple[list[Source], list[Problem]]:
    """Parse and validate a sources file's text; return the sources and every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return [], [Problem(file, mark.line + 1 if mark else None, None, f"not valid YAML: {e}")]
    if not isinstance(data, dict):
        return [], [Problem(file, 1, None, "expected a mapping with a top-level 'sources:' list")]

    problems: list[Problem] = []
    validator = jsonschema.Draft202012Validator(_schema())
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(err.absolute_path)
        node = _node_at(root, path)
        line = node.start_mark.line + 1 if node is not None else None
        problems.append(Problem(file, line, _entry_label(data, path), _describe(err)))

    entries = data.get("sources") if isinstance(data.get("sources"), list) else []
    seen_ids: dict[str, int] = {}
    seen_feeds: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        node = _node_at(root, ["sources", i])
        line = node.start_mark.line + 1 if node is not None else None
        label = _entry_label(data, ["sources", i])
        sid = entry.get("id")
        if isinstance(sid, str):
            if sid in seen_ids:
                problems.append(Problem(file, line, label, f"duplicate id {sid!r} (first at sources[{seen_ids[sid]}])"))
            seen_ids.setdefault(sid, i)
        for feed in entry.get("feeds") or []:
            if not isinstance(feed, str):
                continue
            parts = urlsplit(feed)
            if parts.scheme in ("http", "https") and not parts.hostname:
                problems.append(Problem(file, line, label, f"feed {feed!r} has no host"))
            if feed in seen_feeds and seen_feeds[feed] != sid:
                problems.append(Problem(file, line, label, f"feed {feed!r} is also listed by source {seen_feeds[feed]!r}"))
            seen_feeds.setdefault(feed, sid)
    if problems:
        return [], problems
    sources = [
        Source(
            id=e["id"],
            feeds=tuple(e["feeds"]),
            name=e.get("name"),
            language=e.get("language", "ar"),
            country=e.get("country"),
            poll_interval_s=e.get("poll_interval", 900),
            enabled=e.get("enabled", True),
            max_articles_per_poll=e.get("max_articles_per_poll"),
            min_interval_s=e.get("min_interval"),
            max_connections=e.get("max_connections"),
            obey_robots=e.get("obey_robots", True),
        )
        for e in entries
    ]
    return sources, []


def load_sources(path: str | Path) -> list[Source]:
    """Load and validate a sources file; raise :class:`SourcesError` listing every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SourcesError([Problem(str(p), None, None, f"cannot read: {e.strerror or e}")]) from e
    except UnicodeDecodeError as e:
        raise SourcesError([Problem(str(p), None, None, f"not UTF-8 text: {e}")]) from e
    sources, problems = validate_text(text, str(p))
    if problems:
        raise SourcesError(problems)
    return sources
