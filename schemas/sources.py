"""Loading and validating the sources file.

A bad file fails before anything runs, and every problem names the file, the line, the entry
and what is wrong (all problems at once, not only the first).
"""
from __future__ import annotations

import functools
import ipaddress
import math
import json
import re
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


# Values longer than this are cut short in messages (a value can be a whole expanded alias).
SHOWN_CHARS = 80
# Values a file may hold once its aliases are expanded (``*a`` counts as a copy of ``&a``): a few
# lines of nested aliases can stand for millions of values (a "billion laughs"), which validation
# would walk and every message would print. A sources file with thousands of feeds stays far below.
MAX_EXPANDED_VALUES = 100_000


@functools.lru_cache(maxsize=None)
def _search(pattern: str) -> re.Pattern:
    """``pattern`` as JSON Schema means it: an ECMA-262 ``$`` (without the m flag) matches only at the
    very end, while Python's also matches before a final newline (``^[a-z]+$`` would take "abc\\n")."""
    backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
    if pattern.endswith("$") and backslashes % 2 == 0:
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _search(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 15]}… ({len(text)} chars)"


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
        return f"sources[{path[1]}]" + (f" (id: {_shown_id(sid)})" if isinstance(sid, str) else "")
    return None


def _shown_id(sid: str) -> str:
    """An id as written, or quoted when it holds spaces or control characters (which the checks refuse)."""
    return sid if sid.isprintable() and not any(c.isspace() for c in sid) and len(sid) <= SHOWN_CHARS else _short(sid)


def _field(path: list[Any]) -> str | None:
    """The field a JSON path names: within a source entry relative to it, else from the top."""
    inside = path[2:] if len(path) >= 2 and path[0] == "sources" and isinstance(path[1], int) else path
    return ".".join(str(p) for p in inside) or None


def _describe(err: jsonschema.ValidationError, node: yaml.Node | None) -> str:
    field = _field(list(err.absolute_path))
    if err.validator == "additionalProperties":
        return f"unknown field(s): {err.message.split('(')[-1].rstrip(')')}"
    if err.validator == "pattern" and field == "id":
        if isinstance(err.instance, str) and re.fullmatch(r"[a-z0-9_-]+", err.instance):
            return (f"id {_short(err.instance)} must start with a lowercase letter: as the source= partition, "
                    "readers (pyarrow, DuckDB) would take it for a number or a date")
        return f"id {_short(err.instance)} must be lowercase letters, digits, '_' or '-', starting with a letter"
    if err.validator == "pattern" and field and field.startswith("feeds"):
        if re.match(r"https?://", err.instance) and (not err.instance.isprintable() or " " in err.instance):
            return f"feed {_short(err.instance)} has a space or a control character in it"
        if re.match(r"https?://", err.instance):
            return f"feed {_short(err.instance)} has no host"
        return f"feed {_short(err.instance)} is not an http(s) URL"
    if (err.validator == "type" and err.validator_value == "string" and isinstance(err.instance, (bool, int, float))
            and isinstance(node, yaml.ScalarNode) and not node.style):
        kind = "a boolean" if isinstance(err.instance, bool) else "a number"
        return (f"{field + ': ' if field else ''}{node.value} was read as {kind} ({err.instance!r}); "
                f"quote it: '{node.value}'")
    message = err.message.replace(repr(err.instance), _short(err.instance)) if len(err.message) > SHOWN_CHARS \
        else err.message
    return f"{field + ': ' if field else ''}{message}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _expanded_size(root: yaml.Node, limit: int) -> int | None:
    """How many values ``root`` stands for with its aliases expanded, counted up to ``limit``
    (``limit + 1`` beyond it); ``None`` if an alias refers to a node that contains it."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        if done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(limit + 1, 1 + sum(sizes[id(c)] for c in _children(node)))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return None
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _node_label(entry: yaml.Node, i: int) -> str:
    """``sources[i] (id: …)`` for an entry not yet constructed."""
    ids = [v.value for k, v in entry.value if k.value == "id" and isinstance(v, yaml.ScalarNode)] \
        if isinstance(entry, yaml.MappingNode) else []
    return f"sources[{i}]" + (f" (id: {_shown_id(ids[0])})" if ids else "")


def _duplicate_keys(root: yaml.Node, file: str) -> list[Problem]:
    """Keys given twice in one mapping: YAML forbids them, and a loader keeps only the last."""
    problems: list[Problem] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, str | None]] = [(root, None)]
    while stack:
        node, label = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    problems.append(Problem(file, line, label, f"key {_short(key.value)} given twice (first on line "
                                                               f"{first[key.tag, key.value]}); only one can be used"))
                first.setdefault((key.tag, key.value), line)
        stack.extend((c, label) for c in _children(node))
        if node is root and isinstance(node, yaml.MappingNode):  # label what is inside an entry (popped first)
            for key, value in node.value:
                if key.value == "sources" and isinstance(value, yaml.SequenceNode):
                    stack.extend((entry, _node_label(entry, i)) for i, entry in enumerate(value.value))
    return sorted(problems, key=lambda p: p.line or 0)


def _feed_problem(feed: str) -> str | None:
    """What is wrong with the host or port of an http(s) feed URL (``None`` if nothing)."""
    try:
        parts = urlsplit(feed)
        port = parts.port
    except ValueError as e:  # an unclosed IPv6 bracket, a port that is not a number or out of range
        return f"feed {_short(feed)} is not a valid URL: {e}"
    host = parts.netloc.rpartition("@")[2]
    host = re.sub(r":\d*$", "", host) if not host.endswith("]") else host
    if not parts.hostname:
        return f"feed {_short(feed)} has no host"
    if port == 0:
        return f"feed {_short(feed)}: port 0 cannot be connected to"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1] if host.endswith("]") else "")
            return None
        except ValueError:
            return f"feed {_short(feed)}: {host!r} is not an IPv6 address in brackets"
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        ascii_host = ""
    if not _HOST.fullmatch(ascii_host):
        return f"feed {_short(feed)}: {host!r} is not a valid host name"
    return None


def feed_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a feed URL, as the sources file checks it (``None`` if nothing)."""
    if not _search(FEED_PATTERN).search(url):
        return f"feed {_short(url)} is not an http(s) URL without spaces or control characters"
    return _feed_problem(url)


# what the schema asks of a feed URL; its host and port are checked by :func:`_feed_problem`
FEED_PATTERN = _schema()["$defs"]["source"]["properties"]["feeds"]["items"]["pattern"]
# A DNS name (labels of letters, digits, '-' and '_', at most 63 characters each; a final dot allowed)
# or an IPv4 address, which has the same shape.
_HOST = re.compile(r"(?=.{1,253}\.?$)(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.)*(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.?")


def validate_text(text: str, file: str = "<sources>") -> tuple[list[Source], list[Problem]]:
    """Parse and validate a sources file's text; return the sources and every problem."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return [], [Problem(file, 1, None, "expected a mapping with a top-level 'sources:' list")]
            problems = _duplicate_keys(root, file)
            size = _expanded_size(root, MAX_EXPANDED_VALUES)
            if size is None:
                return [], [Problem(file, None, None, "an alias refers to a value that contains it")]
            if size > MAX_EXPANDED_VALUES:
                return [], [Problem(file, None, None, f"its aliases expand to more than {MAX_EXPANDED_VALUES:,} "
                                                      "values; a sources file needs far fewer")]
            if problems:
                return [], problems
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return [], [Problem(file, mark.line + 1 if mark else None, None, f"not valid YAML: {e}")]
    except RecursionError:
        return [], [Problem(file, None, None, "not valid YAML: nested too deeply")]
    if not isinstance(data, dict):
        return [], [Problem(file, 1, None, "expected a mapping with a top-level 'sources:' list")]

    problems = []
    validator = _Validator(_schema())
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(err.absolute_path)
        node = _node_at(root, path)
        line = node.start_mark.line + 1 if node is not None else None
        problems.append(Problem(file, line, _entry_label(data, path), _describe(err, node)))

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
            why = _feed_problem(feed) if _search(FEED_PATTERN).search(feed) else None  # else the schema said so
            if why:
                problems.append(Problem(file, line, label, why))
            if feed in seen_feeds and seen_feeds[feed] != sid:
                problems.append(Problem(file, line, label, f"feed {feed!r} is also listed by source {seen_feeds[feed]!r}"))
            seen_feeds.setdefault(feed, sid)
        for key, value in entry.items():
            if isinstance(value, float) and math.isnan(value):  # NaN passes every minimum and maximum
                problems.append(Problem(file, line, label, f"{key}: .nan is not a number"))
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
