"""Build a synthetic git repository of N commits quickly with `git fast-import` (benchmark input).

History shape: a main line with short feature branches merged with merge commits (~4% merges), 40
authors, ~1,500 files over 12 subsystems (Java, Python, shell sources plus XML/Markdown/properties
non-sources and test files), edits of 1–4 files per commit, additions, deletions and renames, ~20% of
messages with fix keywords. Deterministic for a given seed.

    .venv/bin/python bench/make_repo.py /tmp/bench-repo --commits 20000
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

_WORDS = ["alpha", "beta", "gamma", "delta", "value", "count", "index", "buffer", "pool", "cache"]
_SUBSYSTEMS = ["core", "api", "server", "client", "storage", "net", "util", "cli", "web", "db", "auth", "io"]
_KINDS = [(".java", 6), (".py", 3), (".sh", 1), (".xml", 1), (".md", 1), (".properties", 1)]


def _line(rng: random.Random) -> bytes:
    return ("    " + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 7))) + ";\n").encode()


def _new_path(rng: random.Random, serial: int) -> str:
    ext = rng.choices([k for k, _ in _KINDS], [w for _, w in _KINDS])[0]
    sub = rng.choice(_SUBSYSTEMS)
    part = "test" if rng.random() < 0.1 else "main"
    name = f"Thing{serial}Test" if part == "test" else f"Thing{serial}"
    return f"{sub}/src/{part}/pkg{serial % 7}/{name}{ext}"


class Builder:
    """Emits a fast-import stream while keeping each branch's file contents in memory."""

    def __init__(self, seed: int, out: object) -> None:
        self.rng = random.Random(seed)
        self.out = out
        self.mark = 0
        self.time = 1_500_000_000
        self.serial = 0
        self.authors = [(f"Dev {i}", f"dev{i}@example.com") for i in range(40)]

    def write(self, data: bytes) -> None:
        self.out.write(data)  # type: ignore[attr-defined]

    def edit(self, files: dict[str, list[bytes]]) -> tuple[dict[str, bytes | None], dict[str, str]]:
        """Random changes to `files` in place: returns {path: content or None for delete}, {old: new}."""
        rng = self.rng
        changed: dict[str, bytes | None] = {}
        renames: dict[str, str] = {}
        roll = rng.random()
        if roll < 0.08 or len(files) < 40:
            self.serial += 1
            path = _new_path(rng, self.serial)
            files[path] = [_line(rng) for _ in range(rng.randint(5, 120))]
            changed[path] = b"".join(files[path])
        elif roll < 0.10:
            path = rng.choice(sorted(files))
            del files[path]
            changed[path] = None
            return changed, renames
        elif roll < 0.12:
            old = rng.choice(sorted(files))
            self.serial += 1
            new = old.rsplit("/", 1)[0] + f"/Moved{self.serial}" + Path(old).suffix
            files[new] = files.pop(old)
            renames[old] = new
            return changed, renames
        paths = sorted(files)
        hot = paths[: max(1, len(paths) // 10)]
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            path = rng.choice(hot) if rng.random() < 0.3 else rng.choice(paths)
            lines = files[path]
            for _ in range(rng.randint(1, 4)):
                at = rng.randint(0, len(lines))
                action = rng.random()
                if action < 0.5 or len(lines) < 3:
                    lines[at:at] = [_line(rng) for _ in range(rng.randint(1, 6))]
                elif action < 0.8:
                    del lines[at : at + rng.randint(1, 3)]
                else:
                    lines[at : at + 1] = [_line(rng)]
            changed[path] = b"".join(lines)
        return changed, renames

    def commit(self, ref: str, parents: list[int], changed: dict[str, bytes | None], renames: dict[str, str]) -> int:
        rng = self.rng
        self.mark += 1
        self.time += rng.randint(60, 20_000)
        name, email = rng.choice(self.authors)
        if rng.random() < 0.05:
            email = email.upper()  # same person, different case: a different identity (METRICS.md)
        verb = "Fix bug in" if rng.random() < 0.2 else rng.choice(["Add", "Refactor", "Improve", "Update"])
        message = f"{verb} {rng.choice(_WORDS)} handling ({self.mark})\n".encode()
        out = [f"commit {ref}\nmark :{self.mark}\n".encode()]
        out.append(f"author {name} <{email}> {self.time} +0000\n".encode())
        out.append(f"committer {name} <{email}> {self.time} +0000\n".encode())
        out.append(b"data %d\n%s" % (len(message), message))
        if parents:
            out.append(f"from :{parents[0]}\n".encode())
            out.extend(f"merge :{p}\n".encode() for p in parents[1:])
        for old, new in renames.items():
            out.append(f'R "{old}" "{new}"\n'.encode())
        for path, data in changed.items():
            if data is None:
                out.append(f'D "{path}"\n'.encode())
            else:
                out.append(f'M 100644 inline "{path}"\ndata {len(data)}\n'.encode() + data + b"\n")
        out.append(b"\n")
        self.write(b"".join(out))
        return self.mark


def build(target: Path, commits: int, seed: int) -> None:
    """Create the repository at `target` (must not exist) with `commits` commits."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(target)], check=True)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=target, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    b = Builder(seed, proc.stdin)
    files: dict[str, list[bytes]] = {}
    head = 0
    made = 0
    while made < commits:
        if made > 50 and b.rng.random() < 0.04 and commits - made > 8:
            branch_files = {p: list(v) for p, v in files.items()}
            tip = head
            touched: dict[str, bytes | None] = {}
            for _ in range(b.rng.randint(1, 4)):
                changed, renames = b.edit(branch_files)
                tip = b.commit("refs/heads/feature", [tip], changed, renames)
                made += 1
                for old, new in renames.items():
                    touched[old] = None
                    touched[new] = b"".join(branch_files[new])
                touched.update(changed)
            for _ in range(b.rng.randint(0, 2)):  # main moves on meanwhile, away from the branch's files
                candidate = {p: list(v) for p, v in files.items()}
                changed, renames = b.edit(candidate)
                if renames or any(p in touched for p in changed):
                    continue
                files = candidate
                head = b.commit("refs/heads/main", [head], changed, {})
                made += 1
            for path, data in touched.items():
                if data is None:
                    files.pop(path, None)
                else:
                    files[path] = branch_files[path]
            head = b.commit("refs/heads/main", [head, tip], touched, {})
            made += 1
            continue
        changed, renames = b.edit(files)
        head = b.commit("refs/heads/main", [head] if head else [], changed, renames)
        made += 1
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("git fast-import failed")
    subprocess.run(["git", "-C", str(target), "update-ref", "-d", "refs/heads/feature"], check=False)
    subprocess.run(["git", "-C", str(target), "reset", "-q", "--hard", "main"], check=True)
    # fast-import writes a poorly deltified pack; a clone gets a well-packed one, so benchmark that.
    subprocess.run(["git", "-C", str(target), "repack", "-adf", "-q"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path)
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.target.exists():
        sys.exit(f"error: {args.target}: already exists")
    build(args.target, args.commits, args.seed)


if __name__ == "__main__":
    main()
