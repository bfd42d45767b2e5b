"""Glue 5.0 job (Spark 3.5, Python 3.11): validate contract records against a DQDL ruleset.

Thin main(): arguments from Glue's getResolvedOptions inside Glue, argparse elsewhere (local pyspark in
tests); all logic lives in `dq_platform` (shipped with --extra-py-files) and in the DataFrame transforms
below, so the job and `dqp dq run --engine spark` evaluate identically.

Glue arguments (all s3:// in AWS, plain paths locally):
  --ruleset_uri     DQDL file
  --input_uri       comma-separated CSV/JSONL objects or prefixes
  --processed_uri   e.g. s3://<processed>/contracts
  --quarantine_uri  e.g. s3://<processed>/quarantine
  --results_uri     e.g. s3://<analytics>/dq-results/{run_id}/results.json
  --staging_uri     e.g. s3://<processed>/_staging  (Spark writes here before publishing)
  --ingest_date     optional YYYY-MM-DD partition (default: today, UTC)
  --max_record_lines  optional: most physical lines one CSV record may span (default 100)
  --row_outcomes    optional: compact (default: processed rows carry DataQualityRulesFail and
                    DataQualityEvaluationResult) or full (Glue's four row-level columns on every row)

The input is read on the driver by the platform's reader, not by Spark's CSV/JSON sources, so that the
job finds the same records as `dqp dq run` (docs/dq.md, "What one record is"); a run whose rows differ
from the independent record count ends FAILED in results.json and, here, as a failed job run.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import Any

from dq_platform.dq.compiler import CompiledRuleset
from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines.spark_engine import SparkEngine, local_spark_session
from dq_platform.dq.pipeline import Evaluation, RunOutputs, column_types, evaluate_loaded, load_ruleset, run
from dq_platform.dq.records import DEFAULT_MAX_RECORD_LINES
from dq_platform.dq.schema import (
    LINE,
    META_COLUMNS,
    PARSE_ERROR,
    RAW_RECORD,
    RECORD,
    ROW_ID,
    SOURCE,
)
from dq_platform.dq.signals import alert_summary

ARGS = ("ruleset_uri", "input_uri", "processed_uri", "quarantine_uri", "results_uri", "staging_uri")
OPTIONAL_ARGS = ("ingest_date", "max_record_lines", "row_outcomes")


class RecordCheckError(RuntimeError):
    """Raised after results.json is written, so that the Glue job run itself ends FAILED."""


# ---- pure DataFrame transforms -------------------------------------------------------------------


def with_row_metadata(df: Any, source: str = "dataframe") -> Any:
    """Add the engine's row columns to a DataFrame that did not come through our readers."""
    from pyspark.sql import functions as F  # noqa: N812

    out = df
    if ROW_ID not in df.columns:
        out = out.withColumn(ROW_ID, F.monotonically_increasing_id())
    if SOURCE not in df.columns:
        out = out.withColumn(SOURCE, F.lit(source))
    if RECORD not in df.columns:
        out = out.withColumn(RECORD, F.col(ROW_ID) + F.lit(1))
    if LINE not in df.columns:
        out = out.withColumn(LINE, F.col(RECORD))
    for col in (PARSE_ERROR, RAW_RECORD):
        if col not in df.columns:
            out = out.withColumn(col, F.lit(None).cast("string"))
    return out


def evaluate_frame(
    spark: Any, df: Any, ruleset_text: str, now: datetime, row_outcomes: str = "compact"
) -> tuple[Any, Any, Evaluation]:
    """DataFrame in -> (processed DataFrame, quarantine DataFrame, evaluation). Nothing is written.
    `row_outcomes`: the processed rows' shape ("compact" or "full", as `--row_outcomes`)."""
    engine = SparkEngine(spark)
    with_row_metadata(df).createOrReplaceTempView("parsed")
    names = [c for c in df.columns if c not in META_COLUMNS]
    ev = evaluate_loaded(engine, parse(ruleset_text), column_types(names), names, now)
    compiled: CompiledRuleset = ev.compiled
    processed = spark.sql(compiled.output_sql("evaluated", ev.errored, quarantined=False, row_outcomes=row_outcomes))
    quarantine = spark.sql(compiled.output_sql("evaluated", ev.errored, quarantined=True))
    return processed, quarantine, ev


# ---- entry point ---------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> dict[str, str]:
    try:  # inside Glue
        from awsglue.utils import getResolvedOptions

        opts = dict(getResolvedOptions(argv, ["JOB_NAME", *ARGS]))
        for optional in OPTIONAL_ARGS:
            if f"--{optional}" in argv:
                opts.update(getResolvedOptions(argv, [optional]))
        return opts
    except ImportError:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        for name in ARGS:
            parser.add_argument(f"--{name}", required=name != "staging_uri")
        for optional in OPTIONAL_ARGS:
            parser.add_argument(f"--{optional}")
        parser.add_argument("--JOB_NAME", default="contracts-dq-local")
        ns = parser.parse_args(argv[1:])
        return {k: v for k, v in vars(ns).items() if v is not None}


def _spark() -> Any:
    try:
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext

        return GlueContext(SparkContext.getOrCreate()).spark_session
    except ImportError:
        return local_spark_session("contracts-dq")


def main(argv: list[str] | None = None, spark: Any = None) -> dict[str, Any]:
    opts = parse_args(list(sys.argv if argv is None else argv))
    name, text = load_ruleset(opts["ruleset_uri"])
    outputs = RunOutputs(opts["processed_uri"], opts["quarantine_uri"], opts["results_uri"], opts.get("staging_uri"))
    day = date.fromisoformat(opts["ingest_date"]) if opts.get("ingest_date") else None
    inputs = [p.strip() for p in opts["input_uri"].split(",") if p.strip()]
    max_lines = int(opts.get("max_record_lines") or DEFAULT_MAX_RECORD_LINES)
    engine = SparkEngine(spark or _spark())
    shape = opts.get("row_outcomes") or "compact"
    result = run(text, name, inputs, outputs, engine, ingest_date=day, max_record_lines=max_lines, row_outcomes=shape)
    res = result.run_results
    print(alert_summary(res))  # job log: counts and rule text only, never record text
    print(json.dumps({"run_id": res.run_id, "status": res.status}))
    if res.records_check == "FAILED":
        raise RecordCheckError(str(res.error))
    return result.results  # the results.json document


if __name__ == "__main__":
    main()
