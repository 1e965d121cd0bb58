"""A fleet's data folder in an S3-compatible bucket (`--out-dir s3://BUCKET/PREFIX`), the layout of a local one.

Each repository is mined in a local staging folder exactly as into a local data folder; its state and marker
come from the bucket before, its CSV, state and marker go back after (the marker last: a marker in the bucket
always names a CSV the bucket has). Every object is written with one PUT, which S3 makes visible whole or not
at all, so a killed pod never leaves a half-written object. Endpoint, region and credentials come from boto3's
own configuration (AWS_ENDPOINT_URL[_S3], AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, ~/.aws, a pod's
role); boto3 is imported only here, and only when a bucket is used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.mining.fleet import (
    CACHE,
    MARKERS,
    EntryOutcome,
    FleetEntry,
    FleetOptions,
    checkout,
    marker_holds,
    marker_path,
    mine_files,
    tips_of,
)
from training.mining.repository import MiningError

SCHEME = "s3://"
# S3 error codes that retrying cannot fix: the bucket is not there, or these credentials may not use it.
_MISSING_BUCKET = {"NoSuchBucket"}
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
            "AllAccessDisabled", "AccountProblem", "InvalidBucketName"}  # fmt: skip


class BucketError(MiningError):
    """The bucket refused: it does not exist, or the credentials are missing or denied (retrying cannot help)."""


class BucketUnreachable(BucketError):
    """The endpoint could not be reached or failed (connection, timeout, 5xx): worth retrying."""


def is_bucket(out_dir: str) -> bool:
    """True when `--out-dir` names a bucket (`s3://…`) rather than a local folder."""
    return out_dir.startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class BucketUrl:
    """`s3://BUCKET/PREFIX`: the bucket and the key prefix the data folder's files live under."""

    bucket: str
    prefix: str  # without leading or trailing "/"; "" for the bucket's root

    @classmethod
    def parse(cls, text: str) -> BucketUrl:
        """Split an `s3://BUCKET[/PREFIX]` URL; no bucket name is a MiningError."""
        bucket, _, prefix = text.removeprefix(SCHEME).partition("/")
        if not bucket:
            raise MiningError(f"--out-dir: {text!r} names no bucket (expected s3://BUCKET[/PREFIX])")
        return cls(bucket, prefix.strip("/"))

    def key(self, relative: str) -> str:
        """The object key of a data-folder path (`<id>.csv`, `.fleet/<id>.json`, …)."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def url(self, relative: str = "") -> str:
        """`s3://BUCKET/KEY`, for messages."""
        return f"{SCHEME}{self.bucket}/{self.key(relative)}"


class Bucket:
    """Whole-object reads and writes under one `s3://BUCKET/PREFIX`; every failure is one MiningError line."""

    def __init__(self, url: BucketUrl, client: Any = None) -> None:
        import boto3

        self.url = url
        try:
            self._client = client or boto3.client("s3")
        except Exception as exc:  # a malformed AWS_ENDPOINT_URL, a broken ~/.aws/config, …
            raise self._error(exc, "") from exc

    def fetch(self, relative: str, path: Path) -> bool:
        """Download an object to `path` (temp file, then rename); False, and no local copy, when it is absent."""
        try:
            body = self._call("get_object", relative, Key=self.url.key(relative))["Body"]
        except _Absent:
            path.unlink(missing_ok=True)  # the bucket is the truth: a stale staging copy must not be used
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with body, temp.open("wb") as handle:
                shutil.copyfileobj(body, handle, 1 << 20)
            temp.replace(path)
        except Exception as exc:
            temp.unlink(missing_ok=True)
            raise self._error(exc, relative) from exc
        return True

    def exists(self, relative: str) -> bool:
        """True when the object is in the bucket."""
        try:
            self._call("head_object", relative, Key=self.url.key(relative))
        except _Absent:
            return False
        return True

    def put(self, path: Path, relative: str) -> None:
        """Upload a file as one object, in one PUT: readers see the old object or the whole new one."""
        with path.open("rb") as handle:
            self._call("put_object", relative, Key=self.url.key(relative), Body=handle)

    def _call(self, method: str, relative: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(Bucket=self.url.bucket, **kwargs)
        except Exception as exc:
            raise self._error(exc, relative) from exc

    def _error(self, exc: Exception, relative: str) -> Exception:
        """The one-line error for a failed call (or _Absent for a missing key, which callers expect)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as NoConnection

        where = self.url.url(relative)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            message = error.get("Message") or code
            if code in _MISSING_BUCKET:
                return BucketError(f"{SCHEME}{self.url.bucket}: no such bucket")
            if code in ("NoSuchKey", "404", "NotFound"):
                return _Absent()
            if code in _REFUSED or status == 403:
                return BucketError(f"{where}: access denied ({code}: {message})")
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"):
                return BucketUnreachable(f"{where}: the endpoint failed ({code}: {message})")
            return BucketError(f"{where}: {code}: {message}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return BucketError(f"{where}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
        if isinstance(exc, NoConnection | HTTPClientError | IncompleteReadError | ConnectionError | TimeoutError):
            return BucketUnreachable(f"{where}: endpoint unreachable ({_one_line(exc)})")
        if isinstance(exc, BotoCoreError | ValueError):  # a malformed endpoint URL, an unknown region, …
            return BucketError(f"{where}: {_one_line(exc)}")
        if isinstance(exc, OSError):  # the staging copy could not be written (full disk, permissions)
            return MiningError(f"{where}: {exc.strerror or _one_line(exc)}")
        return exc


class _Absent(Exception):
    """The object is not in the bucket (internal: turned into False by fetch and exists)."""


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def mine_entry_to_bucket(
    entry: FleetEntry, bucket: Bucket, staging: Path, options: FleetOptions, cache: Path | None = None
) -> EntryOutcome:
    """Mine one entry in `staging` with the bucket's state and marker; upload its CSV, state, then marker.

    The marker is read first, before any clone, so a missing bucket or refused credentials fail at once.
    """
    name = entry.repository_id
    csv, state, marker = f"{name}.csv", f"{name}.csv.state", f"{MARKERS}/{name}.json"
    bucket.fetch(marker, marker_path(staging, name))
    repo_path = checkout(entry, cache or staging / CACHE)
    tips = tips_of(repo_path, options)
    if marker_holds(marker_path(staging, name), tips, options) and bucket.exists(csv):
        return EntryOutcome(name, True, None)
    bucket.fetch(state, staging / state)  # resume or continue from the bucket's state, not a stale local one
    sent: list[str] = []

    def checkpointed(path: Path) -> None:  # each checkpoint goes up as it is saved: a killed pod resumes from it
        bucket.put(path, state)
        sent[:] = [_digest(path)]

    result = mine_files(repo_path, staging, name, options, tips, checkpointed)
    for relative in (csv, state, marker):  # the marker last
        if relative != state or sent != [_digest(staging / state)]:  # the last checkpoint is the final state
            bucket.put(staging / relative, relative)
    return EntryOutcome(name, False, result)


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
