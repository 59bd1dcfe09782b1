"""The s3 source: the DAQ pairs under an S3 prefix, paired and checked as a folder's, read ahead.

A bucket is the DAQ server's folder moved to an object store: the same ``duck_i``/``duck_q``
names under a prefix (sub-prefixes are not read, as sub-folders are not). The listing is
paginated and paired by :func:`quaxspec.daq.pair_names`, the sizes it gives are checked by
:func:`quaxspec.daq.check_pair_sizes` before anything is downloaded, and the next pairs are
downloaded in worker threads while the current one is sent, so a download never holds up the
schedule. The client is boto3: credentials, profile, region and endpoint come the standard AWS
ways unless :class:`quaxspec.settings.S3Settings` names them.

Transient errors (connections refused or dropped, timeouts, 5xx, throttling) are retried by
botocore's standard mode for one request, then by an exponential backoff here for as long as
they last: a store that is away stalls the replay, it does not lose files. A pair that cannot
be read for a lasting reason (deleted, access denied, sizes that do not match) is reported and
skipped, like a bad pair in a folder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import structlog
import tenacity
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError, SSLError
from botocore.exceptions import ConnectionError as BotoConnectionError

from quax_producer.items import BadPair, SourceItem
from quaxspec.daq import (
    DaqFileError,
    DaqRecord,
    check_pair_sizes,
    pair_names,
    record_from_bytes,
)
from quaxspec.settings import S3Location, S3Settings

__all__ = ["Bucket", "BucketScan", "ObjectPair", "bucket_source"]

_log = structlog.get_logger(__name__)
_T = TypeVar("_T")

#: Error codes of a store asking the client to slow down or come back (besides 5xx).
_BUSY_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"})
#: How long a blocking call (at start: the first file's time, a resumed file's fingerprint)
#: waits for a store that is away before the producer gives up with the error.
_BLOCKING_PATIENCE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class ObjectPair:
    """The I and Q objects of one acquisition, as listed."""

    number: int
    i_key: str
    q_key: str
    i_bytes: int
    q_bytes: int
    #: When the later of the two objects was written (Unix time): the pair's DAQ time.
    modified: float


@dataclass(frozen=True, slots=True)
class BucketScan:
    """The prefix's complete pairs in file-number order, and its files without a partner."""

    pairs: list[ObjectPair]
    problems: list[DaqFileError]


class Bucket:
    """The DAQ pairs under one S3 prefix. Blocking calls, safe from several threads."""

    def __init__(
        self, location: S3Location, settings: S3Settings, *, page_size: int = 1000
    ) -> None:
        self.location = location
        self._client = _client(settings)
        self._page_size = page_size  # keys per listing request (1000 is S3's most)
        self._listing: BucketScan | None = None

    def listing(self) -> BucketScan:
        """The prefix's pairs as listed the first time this is called (one attempt).

        The s3 source replays a finished prefix, so naming a new run after its first pair and
        streaming its pairs share one listing (listing 10⁵ objects takes 100 requests).
        """
        if self._listing is None:
            self._listing = self.scan()
        return self._listing

    def scan(self) -> BucketScan:
        """List the prefix (every page) and pair what is there."""
        listed: dict[str, tuple[str, int, float]] = {}  # URL -> key, size, mtime
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket,
            Prefix=self.location.prefix,
            Delimiter="/",
            PaginationConfig={"PageSize": self._page_size},
        )
        for page in pages:
            for entry in page.get("Contents", ()):
                key = entry["Key"]
                listed[self.location.url(key)] = (
                    key,
                    int(entry["Size"]),
                    entry["LastModified"].timestamp(),
                )
        pairing = pair_names(listed)
        pairs = []
        for number, i_url, q_url in pairing.pairs:
            (i_key, i_bytes, i_time), (q_key, q_bytes, q_time) = listed[i_url], listed[q_url]
            pairs.append(ObjectPair(number, i_key, q_key, i_bytes, q_bytes, max(i_time, q_time)))
        return BucketScan(pairs, pairing.problems)

    def read(self, pair: ObjectPair) -> DaqRecord:
        """Download a pair (one attempt); DaqFileError if it is not a usable pair."""
        i_url, q_url = self.location.url(pair.i_key), self.location.url(pair.q_key)
        check_pair_sizes(i_url, pair.i_bytes, q_url, pair.q_bytes)  # before any download
        i, q = self._get(pair.i_key), self._get(pair.q_key)
        return record_from_bytes(
            pair.number, i, q, i_name=i_url, q_name=q_url, daq_time=pair.modified
        )

    def pair_named(self, number: int) -> ObjectPair | None:
        """File ``number``'s pair as the bucket has it now (one attempt); None if incomplete."""
        keys = [f"{self.location.prefix}duck_{c}_{number:05d}.dat" for c in ("i", "q")]
        heads = []
        for key in keys:
            try:
                heads.append(self._client.head_object(Bucket=self.location.bucket, Key=key))
            except ClientError as error:
                if _status(error) == 404:
                    return None
                raise
        (i_head, q_head), (i_key, q_key) = heads, keys
        modified = max(h["LastModified"].timestamp() for h in heads)
        return ObjectPair(
            number, i_key, q_key, i_head["ContentLength"], q_head["ContentLength"], modified
        )

    def fingerprint_of(self, number: int) -> str | None:
        """The fingerprint of file ``number`` as the bucket has it now; None if it has none.

        Blocking (it downloads the pair), with retries while the store is away.
        """

        def once() -> str | None:
            pair = self.pair_named(number)
            try:
                return None if pair is None else self.read(pair).fingerprint()
            except DaqFileError:
                return None

        return _patiently_blocking(once, doing=f"reading file {number}")

    def first_time(self, first_file: int) -> float | None:
        """When the first pair from ``first_file`` on was written; None if there is none."""
        scan = _patiently_blocking(self.listing, doing="listing")
        return next((p.modified for p in scan.pairs if p.number >= first_file), None)

    def _get(self, key: str) -> bytes:
        response = self._client.get_object(Bucket=self.location.bucket, Key=key)
        body: bytes = response["Body"].read()
        return body


async def bucket_source(
    bucket: Bucket,
    *,
    first_file: int = 0,
    limit: int | None = None,
    skip: Callable[[int], bool] = lambda number: False,
    read_ahead: int = 2,
    on_retry: Callable[[], None] = lambda: None,
) -> AsyncGenerator[SourceItem, None]:
    """The prefix's pairs in file-number order, ``read_ahead`` pairs downloaded ahead.

    ``first_file``, ``limit`` and ``skip`` mean what they mean for a folder (see
    :func:`quax_producer.sources.directory_source`); ``on_retry`` is called at every retry.
    """

    async def patiently(call: Callable[[], _T], doing: str) -> _T:
        async def in_thread() -> _T:
            return await asyncio.to_thread(call)

        result: _T = await _patiently(in_thread, doing=doing, on_retry=on_retry)
        return result

    async def item(pair: ObjectPair) -> SourceItem:
        try:
            return await patiently(lambda: bucket.read(pair), f"reading file {pair.number}")
        except DaqFileError as error:
            return BadPair(error=error, reason="invalid", number=pair.number)
        except ClientError as error:  # a lasting refusal: gone, forbidden, …
            url = bucket.location.url(pair.i_key)
            message = error.response.get("Error", {}).get("Message")
            reason = f"unreadable ({_code(error)}: {message})"
            return BadPair(error=DaqFileError(url, reason), reason="invalid", number=pair.number)

    scan = await patiently(bucket.listing, "listing")
    for problem in scan.problems:
        yield BadPair(error=problem, reason="unpaired")
    pairs = [pair for pair in scan.pairs if pair.number >= first_file]
    reading: dict[int, asyncio.Task[SourceItem]] = {}
    taken = 0
    try:
        for index, pair in enumerate(pairs):
            if limit is not None and taken >= limit:
                return
            if skip(pair.number):
                taken += 1
                continue
            for ahead in pairs[index : index + 1 + read_ahead]:
                if ahead.number not in reading and not skip(ahead.number):
                    reading[ahead.number] = asyncio.ensure_future(item(ahead))
            found = await reading.pop(pair.number)
            taken += not isinstance(found, BadPair)
            yield found
    finally:
        for task in reading.values():
            task.cancel()


def _client(settings: S3Settings) -> Any:
    session = boto3.session.Session(profile_name=settings.profile)
    secret = settings.secret_access_key
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=None if secret is None else secret.get_secret_value(),
        config=Config(
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            s3={"addressing_style": settings.addressing_style},
        ),
    )


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "?"))


def _transient(error: BaseException) -> bool:
    """Whether an error may pass by itself: worth waiting and trying again."""
    if isinstance(error, ClientError):
        status = _status(error)
        return status >= 500 or status == 429 or _code(error) in _BUSY_CODES
    if isinstance(error, SSLError):  # a certificate that does not verify stays so
        return False
    # Refused, reset or dropped connections, timeouts, bodies cut short.
    return isinstance(error, BotoConnectionError | HTTPClientError | IncompleteReadError)


def _backoff() -> tenacity.wait.wait_base:
    return tenacity.wait_exponential(multiplier=0.5, min=0.5, max=30) + tenacity.wait_random(0, 0.5)


def _warn(doing: str) -> Callable[[tenacity.RetryCallState], None]:
    def warn(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        _log.warning(
            "The object store is unavailable; waiting for it.",
            doing=doing,
            attempt=state.attempt_number,
            error=repr(error),
            retry_in_s=round(wait, 1),
            waiting_s=round(time.monotonic() - state.start_time, 1),
        )

    return warn


async def _patiently(call: Callable[[], Any], *, doing: str, on_retry: Callable[[], None]) -> Any:
    warn = _warn(doing)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        on_retry()
        warn(state)

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(_transient),
        wait=_backoff(),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(call)


def _patiently_blocking(call: Callable[[], _T], *, doing: str) -> _T:
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        wait=_backoff(),
        stop=tenacity.stop_after_delay(_BLOCKING_PATIENCE_SECONDS),
        before_sleep=_warn(doing),
        reraise=True,
    )
    return retrying(call)
