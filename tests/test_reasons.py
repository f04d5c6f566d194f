"""Every dead-letter reason the code can emit is documented in one table."""
import re
from pathlib import Path

from akhbar.schemas.reasons import REASONS, is_known, reasons_markdown

ROOT = Path(__file__).resolve().parents[1]
EMITTERS = re.compile(
    r"""(?:FetchError|ExtractError|FeedError|failed)\(\s*["']([a-z0-9_]+)["']"""
    r"""|FeedProblem\([^,()]*,\s*["']([a-z0-9_]+)["']"""
    r"""|reason\s*=\s*["']([a-z0-9_]+)["']""")


def emitted_codes() -> set[str]:
    codes = set()
    for folder in ("transforms", "pipelines"):
        for path in (ROOT / folder).glob("*.py"):
            for m in EMITTERS.finditer(path.read_text(encoding="utf-8")):
                codes.add(next(g for g in m.groups() if g))
    return codes


def test_every_emitted_reason_is_documented():
    codes = emitted_codes()
    assert {"timeout", "empty_body", "robots_disallowed", "hostile_xml", "internal_error", "entry_without_link"} <= codes
    undocumented = sorted(c for c in codes if not is_known(c))
    assert not undocumented, f"add to schemas/reasons.py: {undocumented}"


def test_http_codes():
    assert is_known("http_404") and is_known("http_503") and not is_known("http_abc")
    assert "http_NNN" in REASONS


def test_generated_doc_is_current():
    assert (ROOT / "docs" / "dead-letters.md").read_text(encoding="utf-8") == reasons_markdown(), \
        "docs/dead-letters.md is stale: python -m akhbar.schemas.reasons > docs/dead-letters.md"


def test_lasting_failures_are_those_the_next_poll_would_meet_again():
    from akhbar.schemas.reasons import is_lasting

    for code in ("http_404", "http_410", "http_403", "empty_body", "robots_disallowed", "unsupported_content_type",
                 "too_large", "internal_error"):
        assert is_lasting(code), code
    for code in ("timeout", "connection_error", "dns_error", "robots_unavailable", "http_429", "http_408",
                 "http_500", "http_503", "http_599"):
        assert not is_lasting(code), code
