"""Every link, anchor, code path and benchmark script the docs point a reader to exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.markdown import BENCHMARKS, anchors, code, links, pages, prose, read, section, slug, table_rows
from tests.support import ROOT

# Code that names a file or folder of this repository starts with one of its top-level folders.
# (`deploy/commitrisk-api` in a kubectl command is a Kubernetes Deployment, not a path: only deploy/k8s counts.)
CODE_PATH = re.compile(
    r"(?<![\w./~-])((?:app|training|bench|tests|monitoring|deploy/k8s|scripts|docs|requirements)(?:/[\w.-]*)+)"
)
# Examples of the conventions (`app/x.py` → `tests/app/test_x.py`) name no real file.
EXAMPLE = re.compile(r"(?:^|/)(?:test_)?[xy](?:\.py)?(?:/|$)")
BENCH_SCRIPT = re.compile(r"\bbench(?:/|\.)(\w+)(?:\.py)?\b")


def benchmark_scripts(root: Path = ROOT) -> set[str]:
    """Names of the bench/ scripts that measure something: run as a script, they append to BENCHMARKS.md."""
    found: set[str] = set()
    for path in (root / "bench").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        if path.stem != "machine" and "__main__" in source and ("bench.machine" in source or "BENCHMARKS" in source):
            found.add(path.stem)
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Relative links of `page` whose file, or whose anchor in that file, does not exist."""
    text = read(page)
    broken: list[str] = []
    for target in links(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto: — not ours to check offline
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.is_relative_to(root.resolve()) or not destination.exists():
            broken.append(f"{page.name}: {target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(read(destination)):
            broken.append(f"{page.name}: {target}: no heading with anchor #{anchor}")
    return broken


def missing_code_paths(page: Path, root: Path = ROOT) -> list[str]:
    """Repository paths named in the page's code (`app/x.py`, `deploy/k8s/`, …) that do not exist."""
    missing: set[str] = set()
    for snippet in code(read(page)):
        for found in CODE_PATH.findall(snippet):
            path = found.rstrip(".,")
            if not EXAMPLE.search(path) and not (root / path).exists():
                missing.add(path)
    return sorted(f"{page.name}: {path}" for path in missing)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken_links(page)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_path_exists(page: Path) -> None:
    assert not missing_code_paths(page)


def test_every_benchmark_script_mentioned_exists() -> None:
    mentioned = {(page.name, name) for page in pages() for name in BENCH_SCRIPT.findall(read(page))}
    missing = sorted(
        f"{page}: bench/{name}.py" for page, name in mentioned if not (ROOT / "bench" / f"{name}.py").is_file()
    )
    assert not missing


def test_every_benchmark_script_is_in_the_scripts_table() -> None:
    listed = {name for row in table_rows(section(read(BENCHMARKS), "Scripts")) for name in BENCH_SCRIPT.findall(row[0])}
    scripts = benchmark_scripts()
    assert {"train", "serve", "mine"} <= scripts, "the benchmark scripts are no longer recognised"
    assert scripts <= listed, f"BENCHMARKS.md, Scripts: no row for {sorted(scripts - listed)}"


def test_current_figures_link_to_a_run_below() -> None:
    text = read(BENCHMARKS)
    rows = table_rows(section(text, "Current figures"))[1:]
    assert rows, "BENCHMARKS.md opens with a table of the current figures"
    targets = [target for row in rows for target in links(row[-1])]
    assert len(targets) == len(rows), "every current figure links to its run"
    history = prose(text).split("\n## History\n", 1)[1]
    runs = {slug(line[3:]) for line in history.splitlines() if line.startswith("## ")}
    assert not [t for t in targets if t.lstrip("#") not in runs], "links to runs that are not in the history"


# ---- the checkers fail on broken docs ---------------------------------------------------------------------


def test_a_missing_file_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Known part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#known-part) [self](#page) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](other.md#unknown) [bad self](#nowhere)\n"
        "```\n[not a link](in-code.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "page.md: missing.md: no such file",
        "page.md: other.md#unknown: no heading with anchor #unknown",
        "page.md: #nowhere: no heading with anchor #nowhere",
    ]


def test_a_stale_code_path_is_reported(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("")
    page = tmp_path / "page.md"
    page.write_text("Built in `app/main.py`, once in `app/drift.py`.\n\n```bash\npython training/old.py\n```\n")
    assert missing_code_paths(page, tmp_path) == ["page.md: app/drift.py", "page.md: training/old.py"]


def test_github_anchors() -> None:
    assert slug("Training (`bench/train.py`) — 2026-11-26 10:42 UTC") == "training-benchtrainpy--2026-11-26-1042-utc"
    assert slug("[Feedback](x.md) (late labels)") == "feedback-late-labels"
    assert anchors("# A\n## Store size\n## Store size\n```\n# not a heading\n```\n") == {
        "a",
        "store-size",
        "store-size-1",
    }
