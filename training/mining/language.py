"""Which files count as source code: go-enry's classification, cached (METRICS.md "Counted files").

enry's GetLanguage runs its strategies in order (modeline, filename, shebang, extension, then content
heuristics and a classifier) and stops at the first one that names exactly one language. Calling it with
the whole blob costs ~100 µs, most of it spent on content the answer rarely depends on. So the answer for
a path with empty content is cached; a blob reuses it only when enry would have stopped before looking at
its content: not binary, no shebang, nothing that could be a modeline in its first or last lines, and the
path alone names one language. Everything else goes to enry with the full blob
(tests/training/mining/test_language.py checks both routes agree).
"""

from __future__ import annotations

import re

# A superset of go-enry's Emacs (`-*- … -*-`) and Vim/ex (`vi:`, `vim<703:`, `ex:`) modeline patterns.
_MODELINE_HINT = re.compile(rb"-\*-|(?:vi|ex)(?:m[<=>]?\d*)?\s*:", re.IGNORECASE)
_SNIFF = 8000  # go-enry's IsBinary looks for a NUL byte in the first 8000 bytes
_SCOPE = 6  # go-enry scans 5 head and 5 foot lines for modelines; one more for safety

# Bounded caches keep memory flat on huge histories while catching the repeats that matter.
_CACHE_LIMIT = 200_000

# go-enry's IsGenerated reads at most the first 40 lines of a file, except for these extensions (minified or
# compiled JavaScript/CSS, .NET doc XML, PostScript fonts, VCR cassettes), whose matchers scan it all or
# read its last lines. Passing a long file's head only is the same question at a fraction of the cost
# (cgo copies the whole buffer): 110 µs a call on a 400 KB Java file.
_WHOLE_FILE_GENERATED = frozenset({".js", ".css", ".xml", ".ps", ".eps", ".pfa", ".yml"})
_GENERATED_HEAD_LINES = 100


def line_count(data: bytes) -> int:
    """Lines of a blob: `\\n`-separated, a trailing newline starts no line, an empty file counts as 1."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def subsystem(path: str) -> str:
    """First path component; a root-level file is in the empty subsystem."""
    head, sep, _ = path.partition("/")
    return head if sep else ""


def directory(path: str) -> str:
    """Parent directory; a root-level file is in the empty directory."""
    head, sep, _ = path.rpartition("/")
    return head if sep else ""


def _edges(content: bytes) -> bytes:
    """The first and last few lines, where modelines live."""
    head = 0
    for _ in range(_SCOPE):
        head = content.find(b"\n", head) + 1
        if head == 0:
            return content
    tail = len(content)
    for _ in range(_SCOPE + 1):
        tail = content.rfind(b"\n", 0, tail)
        if tail < head:
            return content
    return content[:head] + content[tail:]


def go_extension(path: str) -> str:
    """filepath.Ext(path), lower-cased: what go-enry's generated-code matchers key on."""
    base = path.rpartition("/")[2]
    dot = base.rfind(".")
    return base[dot:].lower() if dot >= 0 else ""


def generated_head(path: str, content: bytes) -> bytes:
    """The part of `content` go-enry's IsGenerated can look at for this path (all of it when unsure)."""
    if go_extension(path) in _WHOLE_FILE_GENERATED:
        return content
    # One split in C, not a find() per line: half the time on jedis' 16,000 Java versions, the same bytes.
    parts = content.split(b"\n", _GENERATED_HEAD_LINES)
    if len(parts) <= _GENERATED_HEAD_LINES:
        return content  # at most that many lines (the last one may lack its newline)
    return content[: len(content) - len(parts[-1])]


def content_matters(content: bytes) -> bool:
    """True when enry's answer could depend on this content beyond the path (binary, shebang, modeline)."""
    return b"\0" in content[:_SNIFF] or content.startswith(b"#!") or _MODELINE_HINT.search(_edges(content)) is not None


class Classifier:
    """Decides whether a file is a counted-type source file from its path and content."""

    def __init__(self) -> None:
        import enry  # optional dependency (extra `mine`): imported only when mining

        self._enry = enry
        self._excluded: dict[str, bool] = {}
        self._path_language: dict[str, str | None] = {}
        self._types: dict[str, bool] = {}

    def excluded(self, path: str) -> bool:
        """Path-only exclusions (vendor, test, documentation, configuration, dotfile), cached per path."""
        excluded = self._excluded.get(path)
        if excluded is None:
            e = self._enry
            excluded = (
                e.is_vendor(path)
                or e.is_test(path)
                or e.is_documentation(path)
                or e.is_configuration(path)
                or e.is_dot_file(path)
            )
            if len(self._excluded) >= _CACHE_LIMIT:
                self._excluded.clear()
            self._excluded[path] = excluded
        return excluded

    def _by_path(self, path: str) -> str | None:
        """The language the path alone decides (filename or extension naming exactly one), else None."""
        if path in self._path_language:
            return self._path_language[path]
        languages = self._enry.get_languages(path, b"")
        language = None
        # One language from the path, and no content heuristic registered for it (those can answer even
        # for empty content, e.g. `.h` → C, and would answer differently for real content).
        if len(languages) == 1 and not self._enry.get_language_by_content(path, b"").language:
            language = languages[0]
        if len(self._path_language) >= _CACHE_LIMIT:
            self._path_language.clear()
        self._path_language[path] = language
        return language

    def language(self, path: str, content: bytes) -> str:
        """enry's GetLanguage(path, content), answered from the path when the content cannot matter."""
        if not content_matters(content):
            language = self._by_path(path)
            if language is not None:
                return language
        return self._enry.get_language(path, content)

    def _programming(self, language: str) -> bool:
        kind = self._types.get(language)
        if kind is None:
            kind = self._types[language] = self._enry.get_language_type(language) == "programming"
        return kind

    def is_source(self, path: str, content: bytes) -> bool:
        """True when enry types the file as *programming* and not vendor/test/doc/config/dotfile/generated."""
        if self.excluded(path):
            return False
        language = self.language(path, content)
        if not (language and self._programming(language)):
            return False
        return not self._enry.is_generated(path, generated_head(path, content))
