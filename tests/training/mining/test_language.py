"""Counted-type decisions: the cached fast route must agree with go-enry called on the full content."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import enry
import pytest

from training.mining.language import Classifier, content_matters, directory, line_count, subsystem

SAMPLES: list[tuple[str, bytes, bool | None]] = [
    ("src/main/java/a/App.java", b"class App {}\n", True),
    ("src/test/java/a/FooTest.java", b"class FooTest {}\n", False),  # enry's test rule
    ("src/test/java/a/mocks/MockDataSource.java", b"class MockDataSource {}\n", True),
    ("src/test/java/a/TestFoo.java", b"class TestFoo {}\n", False),
    ("pom.xml", b"<project/>\n", False),
    ("README.md", b"# hi\n", False),
    ("conf/app.properties", b"a=b\n", False),
    ("build.sh", b"echo hi\n", True),
    ("run.bat", b"@echo off\n", True),
    ("tool", b"#!/usr/bin/env python\nprint(1)\n", True),  # shebang decides
    ("tool2", b"just text\n", False),
    ("vendor/lib/x.js", b"var a;\n", False),
    (".eslintrc.js", b"module.exports = {}\n", False),  # dotfile
    ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00", False),
    ("blob.java", b"\x00\x01\x02binary", False),  # binary content
    ("x.h", b"#include <vector>\nclass A {};\n", True),  # content heuristic: C++
    ("y.h", b"int x;\n", True),
    ("z.m", b"@interface A\n@end\n", True),  # Objective-C vs MATLAB...: content decides
    ("script.txt", b"# vim: set ft=python:\nx = 1\n", None),  # modeline: enry alone decides
    ("emacs.java", b"// -*- mode: ruby -*-\nputs 1\n", None),
]


@pytest.mark.parametrize(("path", "content", "counted"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_fast_route_agrees_with_enry_on_tricky_files(path: str, content: bytes, counted: bool | None) -> None:
    classifier = Classifier()
    assert classifier.language(path, content) == enry.get_language(path, content)
    if counted is not None:
        assert classifier.is_source(path, content) is counted


def test_fast_route_agrees_with_enry_on_a_real_corpus() -> None:
    """Every file of the installed packages (a few thousand, many languages): same language as enry."""
    site = Path(enry.__file__).resolve().parents[1]
    files = sorted(p for p in site.rglob("*") if p.is_file() and p.suffix != ".pyc")
    random.Random(3).shuffle(files)
    classifier = Classifier()
    mismatches = []
    for path in files[:4000]:
        content = path.read_bytes()[:200_000]
        name = str(path.relative_to(site))
        if classifier.language(name, content) != enry.get_language(name, content):
            mismatches.append(name)
    assert len(files) > 1000, sys.prefix
    assert mismatches == []


def test_content_that_can_change_the_answer_is_recognised() -> None:
    assert content_matters(b"#!/bin/sh\n")
    assert content_matters(b"abc\x00def")
    assert content_matters(b"a\n" * 50 + b"# vim: ft=c\n")
    assert content_matters(b"/* -*- C -*- */\n" + b"x\n" * 50)
    assert not content_matters(b"class A {\n" + b"  int x;\n" * 50 + b"}\n")


def test_line_count_follows_metrics_md() -> None:
    assert line_count(b"") == 1  # an empty file counts as 1
    assert line_count(b"a") == 1
    assert line_count(b"a\n") == 1  # a trailing newline starts no line
    assert line_count(b"a\nb") == 2
    assert line_count(b"a\n\n") == 2


def test_subsystem_and_directory_of_root_files_are_empty() -> None:
    assert (subsystem("Main.java"), directory("Main.java")) == ("", "")
    assert (subsystem("src/a/B.java"), directory("src/a/B.java")) == ("src", "src/a")
