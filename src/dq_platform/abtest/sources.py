"""Where log events come from: local files (`dqp serve` output, CloudWatch exports) or CloudWatch Logs.

CloudWatch is read with Logs Insights in production (one query per window, scanning server-side) and
with FilterLogEvents as the fallback: it needs only `logs:FilterLogEvents` and it is what moto serves,
so the same code path is exercised locally. Both return the raw messages; all parsing happens in
`records`, so every source is classified the same way.
"""

from __future__ import annotations

import gzip
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from dq_platform.abtest.records import LogEvent, parse_timestamp

LOG_SUFFIXES = (".log", ".jsonl", ".json", ".txt", ".ndjson", ".gz")
INSIGHTS_MAX_ROWS = 10_000
# Server-side prefilter only; exact classification happens client-side for every source.
INSIGHTS_QUERY = (
    "fields @timestamp, @message, @logStream, @ptr\n"
    '| filter @message like /"message":\\s*"prediction"/ or @message like /"_aws"/\n'
    "| sort @timestamp asc\n"
    "| limit {limit}"
)
FILTER_PATTERN = "?prediction ?_aws"
_RELATIVE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

CloudWatchApi = Literal["auto", "insights", "filter"]


class SourceError(Exception):
    """A source cannot be read at all (missing file, unknown log group, failed query)."""


def parse_when(value: str, now: datetime | None = None) -> datetime:
    """`now`, a duration back from now (`90m`, `24h`, `7d`), or an ISO 8601 date/time (UTC if no offset)."""
    now = now or datetime.now(UTC)
    text = value.strip()
    if text.lower() == "now":
        return now
    match = _RELATIVE_RE.match(text.lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    parsed = parse_timestamp(text)
    if parsed is None:
        raise ValueError(f"not a time: {value!r} (use now, 30m, 24h, 7d or ISO 8601 like 2024-05-01T12:00:00Z)")
    return parsed


@dataclass(frozen=True)
class Window:
    """Half-open [since, until); None means unbounded on that side."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"--since ({self.since.isoformat()}) must be before --until ({self.until.isoformat()})")

    def contains(self, when: datetime | None) -> bool:
        if when is None:
            return self.since is None and self.until is None
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)


# ---- local files -------------------------------------------------------------------------------


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders searched recursively for log-like files; each file once, in order."""
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES))
        elif path.is_file():
            candidates = [path]
        else:
            raise SourceError(f"no such log file or folder: {path}")
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


@dataclass
class LocalFiles:
    """Every line of every file; gzip (CloudWatch exports to S3) is read transparently."""

    paths: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return "local files: " + ", ".join(str(p) for p in self.paths)

    def events(self) -> Iterator[LogEvent]:
        for path in self.paths:
            number = 0
            try:
                with _open_text(path) as handle:
                    for number, line in enumerate(handle, start=1):
                        yield LogEvent(message=line.rstrip("\r\n"), origin=f"{path}:{number}")
            except (OSError, EOFError) as exc:
                # A cut-off .gz or an unreadable file: keep what was read and say where it stopped.
                self.notes.append(f"{path}: reading stopped after line {number}: {exc}")


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


# ---- CloudWatch Logs ---------------------------------------------------------------------------


class LogsClient(Protocol):
    """The part of boto3's CloudWatch Logs client this module uses."""

    def start_query(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_query_results(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def stop_query(self, **kwargs: Any) -> Mapping[str, Any]: ...

    def filter_log_events(self, **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass
class CloudWatchLogs:
    """Events of one log group in a window, via Logs Insights or FilterLogEvents."""

    client: LogsClient
    log_group: str
    since: datetime
    until: datetime
    api: CloudWatchApi = "auto"
    poll_interval_s: float = 1.0
    query_timeout_s: float = 900.0
    # Logs Insights returns at most this many rows per query; a full answer splits the window.
    max_rows: int = INSIGHTS_MAX_ROWS
    # Events per FilterLogEvents page (None: the service default, up to 10,000).
    page_size: int | None = None
    sleep: Callable[[float], None] = time.sleep
    # Filled while reading: which API answered, and anything the reader had to give up on.
    used_api: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        Window(self.since, self.until)  # validates the order

    @property
    def description(self) -> str:
        return (
            f"CloudWatch Logs {self.log_group} via {self.used_api or self.api}, "
            f"{self.since.isoformat()} .. {self.until.isoformat()}"
        )

    def events(self) -> Iterator[LogEvent]:
        if self.api == "filter":
            yield from self._filter_events()
            return
        if self.api == "insights":
            yield from self._insights_events()
            return
        try:
            # Materialised so that a failure mid-way falls back cleanly instead of mixing sources.
            rows = list(self._insights_events())
        except SourceError as exc:
            self.notes.append(f"Logs Insights failed ({exc}); read with FilterLogEvents instead")
            yield from self._filter_events()
            return
        yield from rows

    # -- FilterLogEvents: complete (paginated), cheap on permissions, slower on big groups.
    def _filter_events(self) -> Iterator[LogEvent]:
        from botocore.exceptions import BotoCoreError, ClientError

        self.used_api = "FilterLogEvents"
        kwargs: dict[str, Any] = {
            "logGroupName": self.log_group,
            "startTime": _ms(self.since),
            "endTime": _ms(self.until) - 1,  # endTime is inclusive; the window is half-open
            "filterPattern": FILTER_PATTERN,
        }
        if self.page_size:
            kwargs["limit"] = self.page_size
        while True:
            try:
                page = self.client.filter_log_events(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise SourceError(f"FilterLogEvents on {self.log_group} failed: {exc}") from exc
            for item in page.get("events", []):
                stream = item.get("logStreamName")
                yield LogEvent(
                    message=str(item.get("message", "")),
                    origin=f"{self.log_group}:{stream}:{item.get('eventId')}",
                    timestamp_ms=item.get("timestamp"),
                    stream=stream,
                    event_id=item.get("eventId"),
                )
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return
            kwargs["nextToken"] = token

    # -- Logs Insights: one query per window, split in halves while a window hits the row limit.
    def _insights_events(self) -> Iterator[LogEvent]:
        self.used_api = "Logs Insights"
        start = int(self.since.timestamp())
        end = math.ceil(self.until.timestamp())  # ceil: seconds granularity, client trims
        yield from self._insights_range(start, end)

    def _insights_range(self, start_s: int, end_s: int) -> Iterator[LogEvent]:
        rows = self._run_query(start_s, end_s)
        if len(rows) >= self.max_rows:
            if end_s - start_s > 1:
                # Windows share their boundary second; duplicates are dropped by @ptr downstream.
                mid = (start_s + end_s) // 2
                yield from self._insights_range(start_s, mid)
                yield from self._insights_range(mid, end_s)
                return
            self.notes.append(
                f"more than {self.max_rows} events in the second starting at "
                f"{datetime.fromtimestamp(start_s, UTC).isoformat()}: some were not read (use --cw-api filter)"
            )
        for row in rows:
            fields = {str(f.get("field")): str(f.get("value", "")) for f in row}
            stream = fields.get("@logStream")
            stamp = parse_timestamp(fields.get("@timestamp"))
            yield LogEvent(
                message=fields.get("@message", ""),
                origin=f"{self.log_group}:{stream}:{fields.get('@ptr', '?')}",
                timestamp_ms=_ms(stamp) if stamp else None,
                stream=stream,
                event_id=fields.get("@ptr"),
            )

    def _run_query(self, start_s: int, end_s: int) -> list[list[Mapping[str, Any]]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            started = self.client.start_query(
                logGroupName=self.log_group,
                startTime=start_s,
                endTime=end_s,
                queryString=INSIGHTS_QUERY.format(limit=self.max_rows),
                limit=self.max_rows,
            )
            query_id = str(started["queryId"])
            deadline = time.monotonic() + self.query_timeout_s
            while True:
                result = self.client.get_query_results(queryId=query_id)
                status = result.get("status")
                if status == "Complete":
                    return list(result.get("results", []))
                if status not in ("Scheduled", "Running"):
                    raise SourceError(f"Logs Insights query {query_id} ended with status {status}")
                if time.monotonic() > deadline:
                    self.client.stop_query(queryId=query_id)
                    raise SourceError(f"Logs Insights query {query_id} took over {self.query_timeout_s:.0f} s")
                self.sleep(self.poll_interval_s)
        except (ClientError, BotoCoreError) as exc:
            raise SourceError(f"Logs Insights on {self.log_group} failed: {exc}") from exc


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def logs_client(region: str | None = None) -> LogsClient:
    """boto3 CloudWatch Logs client; honours AWS_ENDPOINT_URL (moto in tests) like every boto3 client."""
    import boto3

    client: LogsClient = boto3.client("logs", region_name=region)
    return client
