"""The Markdown docs read the way GitHub renders them: pages, headings and their anchors, sections, tables,
links and code. Only what the docs tests need; each function is pure on the page text."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"

FENCE = re.compile(r"^```[^\n]*\n.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)\)")
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def pages() -> list[Path]:
    """Every page a reader is sent to: the README, the benchmarks and everything under docs/."""
    return [README, BENCHMARKS, *sorted(DOCS.rglob("*.md"))]


def read(path: Path) -> str:
    """The page's text."""
    return path.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The text without fenced code blocks (their `#` lines are comments, their brackets not links)."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every piece of code on the page: fenced blocks (without their fence lines) and inline code spans."""
    blocks = [block.split("\n", 1)[1].rsplit("\n", 1)[0] for block in FENCE.findall(text)]
    return blocks + SPAN.findall(prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces → hyphens."""
    text = LINK.sub(lambda m: m.group(0)[1 : m.group(0).index("](")], heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every heading outside code, in page order."""
    return [(len(m.group(1)), m.group(2)) for m in HEADING.finditer(prose(text))]


def anchors(text: str) -> set[str]:
    """Every anchor on the page; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, title in headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def section(text: str, title: str) -> str:
    """The text under the heading `title` (exact), up to the next heading of the same or a higher level."""
    body = prose(text)
    for match in HEADING.finditer(body):
        if match.group(2) == title:
            level = len(match.group(1))
            rest = body[match.end() :]
            for following in HEADING.finditer(rest):
                if len(following.group(1)) <= level:
                    return rest[: following.start()]
            return rest
    raise KeyError(f"no heading {title!r}")


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row (header rows included, separator rows not); `\\|` stays inside a cell."""
    rows: list[list[str]] = []
    for line in prose(text).splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]+\|", line):
            rows.append([cell.strip() for cell in CELL_SEPARATOR.split(line.strip("|"))])
    return rows


def spans(cell: str) -> list[str]:
    """The inline code spans of a table cell, in order."""
    return SPAN.findall(cell)


def links(text: str) -> list[str]:
    """The target of every Markdown link outside code."""
    return LINK.findall(re.sub(SPAN, "", prose(text)))
