"""Per-commit diffs: libgit2 options of METRICS.md, huge commits, the rename limit."""

from __future__ import annotations

from tests.support import GitScript
from training.mining.diff import HUGE_COMMIT, FileChange, PatchCache, file_changes, size_metrics
from training.mining.language import Classifier
from training.mining.repository import open_repository


def changes_of(script: GitScript, rev: str = "HEAD") -> list[FileChange]:
    import pygit2

    repo = open_repository(script.path)
    return file_changes(repo, repo.revparse_single(rev).peel(pygit2.Commit), Classifier())


def test_a_commit_touching_thousands_of_files(script: GitScript) -> None:
    for i in range(1000):
        script.write(f"m{i % 7}/f{i}.py", f"x = {i}\ny = {i}\n")
        script.write(f"docs/d{i}.md", f"doc {i}\n")
    script.commit("import", "a@x.org", 0)
    changes = changes_of(script)
    metrics = size_metrics(changes)
    assert len(changes) == 2000
    assert (metrics["nf"], metrics["la"], metrics["ns"], metrics["nd"], metrics["lt"]) == (
        1000,
        2000,
        7,
        7,
        2,
    )


def test_hunks_use_zero_context_and_whitespace_is_ignored(script: GitScript) -> None:
    script.write("a.py", "".join(f"v{i} = {i}\n" for i in range(10)))
    script.commit("add", "a@x.org", 0)
    lines = [f"v{i} = {i}\n" for i in range(10)]
    lines[2] = "v2 = 20\n"  # modified
    lines[4] = "v4  =  4\n"  # whitespace only: ignored
    lines[5] = "v5 = 50\n"  # separated from line 2 by unchanged lines: its own hunk (0 interhunk)
    del lines[8]
    script.write("a.py", "".join(lines))
    script.commit("edit", "a@x.org", 1)
    (change,) = changes_of(script)
    assert (change.la, change.ld, change.ha, change.hd, change.lines) == (2, 3, 2, 3, 9)
    assert change.deleted == ((3, 1), (6, 1), (9, 1))


def test_the_rename_limit_is_200_and_pure_renames_are_not_counted(script: GitScript) -> None:
    def body(i: int, edited: bool) -> str:
        return "".join(f"value_{i}_{j} = {j}\n" for j in range(12)) + ("edited = 1\n" if edited else "")

    for i in range(210):
        script.write(f"a/f{i}.py", body(i, False))
    script.commit("add", "a@x.org", 0)
    for i in range(210):
        (script.path / f"a/f{i}.py").unlink()
        script.write(f"b/f{i}.py", body(i, True))  # renames with edits need similarity checks
    script.commit("move all", "a@x.org", 1)
    changes = changes_of(script)
    # libgit2 with rename_limit=200 stops pairing after 201 renames; its default (1000) would pair all 210.
    assert [c.status for c in changes].count("R") == 201
    assert len(changes) == 219
    for i in range(20):
        (script.path / f"b/f{i}.py").unlink()
        script.write(f"c/f{i}.py", body(i, False))
    script.commit("move some", "a@x.org", 3)
    moved = changes_of(script)
    assert [(c.status, c.la, c.ld) for c in moved] == [("R", 0, 1)] * 20
    script.move("c/f0.py", "d/f0.py")
    script.commit("pure rename", "a@x.org", 4)
    assert size_metrics(changes_of(script))["nf"] == 0  # pure renames are not counted files


def test_a_submodule_entry_is_listed_but_never_counted(script: GitScript) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("add", "a@x.org", 0)
    script.git("update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/lib")  # a gitlink, no object here
    script.git("commit", "-q", "-m", "submodule", env=script._env("a@x.org", "a", 1))
    (change,) = changes_of(script)
    assert (change.path, change.status, change.source, change.counted) == ("vendor/lib", "A", False, False)


def test_merges_skip_patches_and_repeated_blob_pairs_reuse_them(script: GitScript) -> None:
    import pygit2

    script.write("a.py", "x = 1\n")
    script.commit("add", "a@x.org", 0)
    script.write("a.py", "x = 2\n")
    script.commit("edit", "a@x.org", 1)
    repo = open_repository(script.path)
    commit = repo.revparse_single("HEAD").peel(pygit2.Commit)
    (bare,) = file_changes(repo, commit, Classifier(), patches=False)
    assert (bare.source, bare.la, bare.ld, bare.counted) == (True, 0, 0, False)  # a merge needs no more
    cache = PatchCache()
    (first,) = file_changes(repo, commit, Classifier(), cache=cache)
    assert (first.la, first.ld, first.deleted) == (1, 1, ((1, 1),)) and len(cache) == 1
    key = next(iter(cache))
    cache[key] = (7, 7, 1, 1, ((1, 7),), ())  # a planted entry proves the second call reads the cache
    (second,) = file_changes(repo, commit, Classifier(), cache=cache)
    assert (second.la, second.ld) == (7, 7)


def test_a_huge_commit_pairs_only_exact_renames(script: GitScript) -> None:
    count = HUGE_COMMIT // 2 + 10  # more than HUGE_COMMIT added + deleted files once moved
    for i in range(count):
        script.write(f"site/p{i}.html", f"<p>page {i}</p>\n" * 5)
    # (lib/ sorts before site/: libgit2 examines at most 200 rename sources per target, in path order)
    script.write("lib/App.java", "".join(f"int a{i} = {i};\n" for i in range(30)))
    script.write("lib/Util.java", "".join(f"int u{i} = {i};\n" for i in range(30)))
    script.commit("add", "a@x.org", 0)
    for i in range(count):
        (script.path / f"site/p{i}.html").unlink()
        script.write(f"web/q{i}.html", f"<p>page {i}</p>\n" * 5 + "<p>edited</p>\n")  # similar, not equal
    script.move("lib/App.java", "core/App.java")  # identical content: still paired
    script.move("lib/Util.java", "core/Util.java")
    script.write("core/Util.java", script.read("core/Util.java") + "int extra;\n")  # similar only: not paired
    script.commit("move everything", "a@x.org", 1)
    changes = changes_of(script)
    renamed = [(c.old_path, c.path) for c in changes if c.status == "R"]
    assert renamed == [("lib/App.java", "core/App.java")]
    assert len(changes) == 2 * count + 1 + 2  # similar pairs stay an addition and a deletion


def test_origins_hunks_count_whitespace_as_git_blame_does(script: GitScript) -> None:
    import pygit2

    script.write("a.py", "x = 1\ny = 2\nz = 3\n")
    script.commit("add", "a@x.org", 0)
    script.write("a.py", "x = 1\ny  =  2\nz = 30\n")  # line 2 whitespace only, line 3 changed
    script.commit("edit", "a@x.org", 1)
    repo = open_repository(script.path)
    head = repo.revparse_single("HEAD").peel(pygit2.Commit)
    (edit,) = file_changes(repo, head, Classifier(), origins=True)
    assert edit.deleted == ((3, 1),)  # METRICS.md's ld ignores whitespace…
    assert edit.hunks == ((2, 2, 2, 2),)  # …the origins do not: git blame names the whitespace edit
    (added,) = file_changes(repo, head.parents[0], Classifier(), origins=True)
    assert added.hunks == ((0, 0, 1, 3),)
    assert file_changes(repo, head, Classifier())[0].hunks == ()  # not asked for: not computed


def test_a_merge_carries_each_other_parents_hunks(script: GitScript) -> None:
    import pygit2

    script.write("a.py", "x = 1\nu = 0\nv = 0\nw = 0\ny = 2\n")
    script.commit("add", "a@x.org", 0)
    script.switch("side", create=True)
    script.write("a.py", "x = 1\nu = 0\nv = 0\nw = 0\ny = 20\n")
    script.write("b.py", "b = 1\n")
    script.commit("side", "a@x.org", 1)
    script.switch("main")
    script.write("a.py", "x = 10\nu = 0\nv = 0\nw = 0\ny = 2\n")
    script.commit("main", "a@x.org", 2)
    merge = script.merge("side", "Merge side", "a@x.org", 3)
    repo = open_repository(script.path)
    commit = repo.revparse_single(merge).peel(pygit2.Commit)
    changes = {c.path: c for c in file_changes(repo, commit, Classifier(), patches=False, origins=True)}
    # against the first parent line 5 changed; against the side branch line 1
    assert (changes["a.py"].la, changes["a.py"].hunks, changes["a.py"].sides) == (
        0,
        ((5, 1, 5, 1),),
        (((1, 1, 1, 1),),),
    )
    assert (changes["b.py"].hunks, changes["b.py"].sides) == (((0, 0, 1, 1),), ((),))  # as on the side branch


def test_a_merge_reads_a_branch_commits_cached_hunks(script: GitScript) -> None:
    import pygit2

    script.write("a.py", "x = 1\n")
    script.commit("add", "a@x.org", 0)
    script.switch("side", create=True)
    script.write("a.py", "x = 2\n")
    script.commit("side", "a@x.org", 1)
    script.switch("main")
    merge = script.merge("side", "Merge side", "a@x.org", 2)  # main has not moved: the side commit's blob pair
    repo = open_repository(script.path)
    cache = PatchCache()
    (edit,) = file_changes(repo, repo.revparse_single("side").peel(pygit2.Commit), Classifier(), cache=cache,
                           origins=True)  # fmt: skip
    key = next(iter(cache))
    cache[key] = (*cache[key][:5], ((1, 1, 1, 1), (9, 0, 10, 1)))  # planted: proves the merge reads the cache
    commit = repo.revparse_single(merge).peel(pygit2.Commit)
    (merged,) = file_changes(repo, commit, Classifier(), patches=False, cache=cache, origins=True)
    assert edit.hunks == ((1, 1, 1, 1),) and merged.hunks == ((1, 1, 1, 1), (9, 0, 10, 1))


def test_a_submodule_replaced_by_a_file_is_a_deletion_and_an_addition(script: GitScript) -> None:
    import pygit2

    script.write("a.py", "x = 1\n")
    sha = script.commit("add", "a@x.org", 0)
    script.git("update-index", "--add", "--cacheinfo", f"160000,{sha},lib.py")  # a gitlink: its commit is no blob
    script.git("commit", "-q", "-m", "submodule", env=script._env("a@x.org", "a", 1))
    script.git("update-index", "--force-remove", "lib.py")
    script.write("lib.py", "def f():\n    return 1\n")
    script.git("add", "lib.py")
    script.git("commit", "-q", "-m", "vendored", env=script._env("a@x.org", "a", 2))
    repo = open_repository(script.path)
    head = repo.revparse_single("HEAD").peel(pygit2.Commit)
    changes = file_changes(repo, head, Classifier(), origins=True)
    # libgit2 reports no type change (T) without being asked: the submodule goes, a new file comes.
    assert [(c.status, c.source, c.la, c.ld, c.hunks) for c in changes] == [
        ("D", False, 0, 0, ()),
        ("A", True, 2, 0, ((0, 0, 1, 2),)),
    ]
