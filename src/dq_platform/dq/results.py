"""The results document of one DQ run (`results.json`), as a typed model.

The pipeline builds it, writes it last, and the CLI, the Glue job, the signals (metrics and alert text),
the report and the `dq_results` function read it. Rule outcomes keep Glue's field names (`Rule`,
`Outcome`, ...), so users can compare them with Glue's own `EvaluateDataQuality` results. The document
holds counts, rule text and locations only, never record text.

Serialisation keeps exactly the fields that were given (`exclude_unset`), in the order declared here:
a run writes every field but `error` (present only when the run FAILED), and a document written before
a field existed (`records_counted`, ...) reads and writes back without it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["SUCCEEDED", "HALTED", "FAILED"]
RecordsCheck = Literal["PASSED", "FAILED", "NOT_RUN"]


class RuleOutcome(BaseModel):
    """One top-level rule's outcome, in Glue's shape plus the action and the rows that failed it."""

    model_config = ConfigDict(extra="allow")

    Rule: str
    Outcome: Literal["Passed", "Failed", "Error"]
    FailureReason: str | None = None
    EvaluatedMetrics: dict[str, float] = Field(default_factory=dict)
    Action: str = "warn"
    RowsFailed: int | None = None


class RowOutcomes(BaseModel):
    """How the row-level columns were written, and what rebuilds the compact ones
    (`dq.outcomes.rebuild_rule_lists`)."""

    model_config = ConfigDict(extra="allow")

    processed: Literal["compact", "full"] = "compact"  # quarantine rows always carry all four columns
    row_level_rules: list[str] = Field(default_factory=list)  # rules with a per-row status, in rule order
    processed_skips: dict[str, int] = Field(default_factory=dict)  # row-level rule -> processed rows skipped


class OutputLocations(BaseModel):
    """Where the run published its outputs (None: nothing promoted)."""

    model_config = ConfigDict(extra="allow")

    processed: str | None = None
    quarantine: str | None = None
    results: str | None = None


class RunResults(BaseModel):
    """`results.json`. Required: what every consumer relies on; the rest is optional for documents written
    before it existed."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    ruleset: str
    engine: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    status: Status
    score: float = Field(ge=0.0, le=1.0)
    rows_in: int = Field(ge=0)
    rows_processed: int = Field(ge=0)
    rows_quarantined: int = Field(ge=0)
    records_counted: int | None = Field(default=None, ge=0)  # the independent record count
    records_check: RecordsCheck | None = None
    max_record_lines: int | None = None
    ruleOutcomes: list[RuleOutcome] = Field(default_factory=list)  # noqa: N815 - Glue's field name
    halted_by: list[str] = Field(default_factory=list)
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    outputs: OutputLocations = Field(default_factory=OutputLocations)
    row_outcomes: RowOutcomes | None = None
    error: str | None = None

    @property
    def failed_outcomes(self) -> list[RuleOutcome]:
        """Rules that failed or could not be evaluated (an error is never a pass)."""
        return [o for o in self.ruleOutcomes if o.Outcome in ("Failed", "Error")]

    @property
    def rules_passed(self) -> int:
        return sum(1 for o in self.ruleOutcomes if o.Outcome == "Passed")

    def to_document(self) -> dict[str, Any]:
        """The JSON document: the fields given, in declaration order."""
        return self.model_dump(exclude_unset=True)

    def to_json(self) -> bytes:
        return json.dumps(self.to_document(), indent=2, sort_keys=False).encode("utf-8") + b"\n"


def write_results(results_uri: str, results: RunResults) -> None:
    """results.json at `results_uri` (local path or s3://): the run's last write."""
    from dq_platform.storage import open_storage

    parent, _, name = results_uri.rstrip("/").rpartition("/")
    open_storage(parent or ".").write_bytes(name, results.to_json(), content_type="application/json")
