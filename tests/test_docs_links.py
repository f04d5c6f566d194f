"""Every relative link in the README and docs/ points at a file of the repository, and every
``#anchor`` in it at a heading of that file (as GitHub makes anchors from headings)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"#{1,6} (.*)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks); repeats get ``-1``, ``-2`` …"""
    out: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            s = slug(m.group(1))
            out.add(f"{s}-{seen[s]}" if s in seen else s)
            seen[s] = seen.get(s, 0) + 1
    return out


def broken_links(files: list[Path], root: Path = ROOT) -> list[tuple[str, str, str]]:
    bad = []
    for f in files:
        for m in LINK.finditer(f.read_text(encoding="utf-8")):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):  # https:, mailto: …
                continue
            path, _, fragment = target.partition("#")
            dest = (f.parent / path) if path else f
            if not dest.exists():
                bad.append((f.relative_to(root).as_posix(), target, "no such file"))
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                bad.append((f.relative_to(root).as_posix(), target, "no such heading"))
    return bad


def test_slugs_follow_github():
    assert slug("Stored articles in the index (`_state/neardup/`)") == "stored-articles-in-the-index-_stateneardup"
    assert slug("Running on Google Cloud") == "running-on-google-cloud"


def test_a_broken_link_is_found(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Top\n## Top\n```\n# not a heading\n```\n[x](#top-1) [y](#not-a-heading) [z](b.md)\n",
                   encoding="utf-8")
    assert [(target, why) for _, target, why in broken_links([doc], tmp_path)] == \
        [("#not-a-heading", "no such heading"), ("b.md", "no such file")]


def test_readme_and_docs_links_resolve():
    files = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(files) > 10
    assert broken_links(files) == []
