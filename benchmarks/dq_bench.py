"""DQ engine benchmark: DuckDB vs Spark (fresh and warm) vs Great Expectations vs bare Parquet I/O.

    python benchmarks/dq_bench.py --rows 1000000        # the reference run
    python benchmarks/dq_bench.py --rows 20000          # CI-size smoke run

Each measurement runs in its own process so peak memory (process + children, e.g. Spark's JVM) is
measured per engine. Great Expectations (`great-expectations==1.24.1`, pandas) is optional: installed
only for this benchmark; without it that line is skipped. Prints rows/s, peak RSS and the ratios the
project targets (DuckDB >= 5x GE; Spark engine within 2x of a bare Parquet read+rewrite, warm).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RULESET = ROOT / "glue" / "rulesets" / "contracts.dqdl"
NOW = datetime(2025, 6, 1, 12, 0, 0)
DAY = date(2025, 6, 1)


# ---- workers (each in a fresh process) ---------------------------------------------------------------


def _outputs(root: Path) -> Any:
    from dq_platform.dq.pipeline import RunOutputs

    shutil.rmtree(root, ignore_errors=True)
    return RunOutputs(str(root / "processed"), str(root / "quarantine"), str(root / "results.json"))


def worker_duckdb(data: Path, work: Path) -> dict[str, Any]:
    from dq_platform.dq.engines.duckdb_engine import DuckDBEngine
    from dq_platform.dq.pipeline import run

    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    res = run(
        RULESET.read_text(),
        "contracts",
        [data],
        _outputs(work / "duck"),
        DuckDBEngine(),
        now=NOW,
        ingest_date=DAY,
        progress=lambda m: marks.append((m, time.perf_counter() - t0)),
    ).results
    total = time.perf_counter() - t0
    read_s = next(t for m, t in marks if m.startswith("read "))
    return {"seconds": total, "read_s": read_s, "rows": res["rows_in"], "quarantined": res["rows_quarantined"]}


def worker_spark(data: Path, work: Path) -> dict[str, Any]:
    from dq_platform.dq.dqdl import parse
    from dq_platform.dq.engines.spark_engine import SparkEngine, local_spark_session
    from dq_platform.dq.pipeline import column_types, evaluate_loaded, run, write_rows
    from dq_platform.dq.readers import read_inputs
    from dq_platform.dq.schema import CONTRACT_SCHEMA

    t0 = time.perf_counter()
    spark = local_spark_session("dq-bench")
    session_s = time.perf_counter() - t0
    text = RULESET.read_text()
    t1 = time.perf_counter()
    res = run(
        text, "contracts", [data], _outputs(work / "spark1"), SparkEngine(spark), now=NOW, ingest_date=DAY
    ).results
    fresh_s = time.perf_counter() - t0  # process start-up excluded, session start included
    t2 = time.perf_counter()
    run(text, "contracts", [data], _outputs(work / "spark2"), SparkEngine(spark), now=NOW, ingest_date=DAY)
    warm_s = time.perf_counter() - t2
    first_run_s = t2 - t1

    # engine-only (warm): the typed Parquet the reader stages -> rules -> processed + quarantine Parquet
    parsed = read_inputs([data])
    staged = work / "staged.parquet"
    SparkEngine(spark).load("staged", parsed.table, work)  # the Parquet file the pipeline stages for Spark
    doc = parse(text)
    columns = column_types(parsed.table.column_names, CONTRACT_SCHEMA)

    def engine_only(tag: str) -> float:
        t = time.perf_counter()
        engine = SparkEngine(spark)
        engine.load_parquet("parsed", str(staged))
        ev = evaluate_loaded(engine, doc, columns, parsed.source_columns, NOW)
        out = work / f"engine-{tag}"
        shutil.rmtree(out, ignore_errors=True)
        q = ev.rows_quarantined
        for kind, quarantined, rows in (("p", False, ev.rows_in - q), ("q", True, q)):
            write_rows(engine, ev, quarantined, out / kind, "part", rows)  # as pipeline.run does
        engine.close()
        return time.perf_counter() - t

    def bare(tag: str) -> float:
        t = time.perf_counter()
        spark.read.parquet(str(staged)).write.mode("overwrite").parquet(str(work / f"bare-{tag}"))
        return time.perf_counter() - t

    engine_only("warmup")
    bare("warmup")
    engine_s = min(engine_only("a"), engine_only("b"))
    bare_s = min(bare("a"), bare("b"))
    spark.stop()
    return {
        "rows": res["rows_in"],
        "session_s": session_s,
        "fresh_s": fresh_s,
        "first_run_s": first_run_s,
        "warm_s": warm_s,
        "engine_warm_s": engine_s,
        "bare_parquet_warm_s": bare_s,
    }


def worker_ge(data: Path, work: Path) -> dict[str, Any]:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    currencies = ["USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SGD"]
    jurisdictions = ["US-NY", "US-DE", "US-CA", "UK", "IE", "DE", "FR", "NL", "SG", "CA-ON"]
    types = ["MSA", "NDA", "SOW", "License", "Supply", "Services", "Lease", "Distribution"]
    t0 = time.perf_counter()
    df = pd.read_csv(data, dtype=str, keep_default_na=False, na_values=[""], on_bad_lines="warn")
    for col in ("effective_date", "expiry_date"):
        df[col] = pd.to_datetime(df[col], format="%Y-%m-%d", errors="coerce")
    df["value_amount"] = pd.to_numeric(df["value_amount"], errors="coerce")
    read_s = time.perf_counter() - t0
    ctx = gx.get_context(mode="ephemeral")
    batch = ctx.data_sources.add_pandas("bench").add_dataframe_asset("contracts")
    definition = batch.add_batch_definition_whole_dataframe("all")
    suite = ctx.suites.add(gx.ExpectationSuite(name="contracts"))
    limit = (NOW.replace(year=NOW.year + 1)).isoformat()
    for exp in [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnToExist(column="doc_id"),
        gxe.ExpectColumnToExist(column="text"),
        gxe.ExpectColumnValuesToNotBeNull(column="doc_id"),
        gxe.ExpectColumnValuesToBeUnique(column="doc_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="counterparty"),
        gxe.ExpectColumnValuesToNotBeNull(column="effective_date"),
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="title", min_value=0.95),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies),
        gxe.ExpectColumnValuesToBeInSet(column="jurisdiction", value_set=jurisdictions),
        gxe.ExpectColumnValuesToBeInSet(column="contract_type", value_set=types),
        gxe.ExpectColumnValuesToBeBetween(
            column="value_amount", min_value=0, max_value=1e9, strict_min=True, strict_max=True
        ),
        gxe.ExpectColumnValuesToMatchRegex(column="doc_id", regex=r"^[A-Z]+-[A-Z0-9-]+$"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="expiry_date", column_B="effective_date"),
        gxe.ExpectColumnValuesToBeBetween(column="effective_date", max_value=limit),
        gxe.ExpectColumnValueLengthsToBeBetween(column="text", min_value=20, max_value=20000),
        gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column="doc_id", min_value=0.99),
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="currency", max_value=8),
        gxe.ExpectColumnMeanToBeBetween(column="value_amount", min_value=1000, max_value=1e8),
    ]:
        suite.add_expectation(exp)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="v", data=definition, suite=suite))
    t1 = time.perf_counter()
    result = vd.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["doc_id"]},
    )
    validate_s = time.perf_counter() - t1
    failing = sum(1 for r in result.results if not r.success)
    return {"seconds": read_s + validate_s, "read_s": read_s, "rows": len(df), "failed_expectations": failing}


WORKERS = {"duckdb": worker_duckdb, "spark": worker_spark, "ge": worker_ge}


# ---- driver ----------------------------------------------------------------------------------------


def _peak_rss(proc: subprocess.Popen[str], stop: threading.Event, out: list[int]) -> None:
    import psutil

    peak = 0
    try:
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            total = 0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.1)
    except psutil.Error:
        pass
    out.append(peak)


def measure(kind: str, data: Path, work: Path) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--worker", kind, "--data", str(data), "--workdir", str(work)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), []  # type: ignore[var-annotated]
    sampler = threading.Thread(target=_peak_rss, args=(proc, stop, peak), daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - t0
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            result["process_wall_s"] = wall
            result["peak_rss_mb"] = (peak[0] if peak else 0) / 1e6
            return result
    print(f"  {kind}: failed\n{stderr[-2000:]}", file=sys.stderr)
    return None


def generate(rows: int, work: Path, malformed: int) -> Path:
    from dq_platform.sample_data import generate_records, write_records

    path = work / f"contracts-{rows}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        chunk = 100_000
        tmp = work / "chunk.csv"
        with path.open("w", encoding="utf-8") as out:
            for start in range(0, rows, chunk):
                n = min(chunk, rows - start)
                recs = generate_records(n, seed=start, defect_rate=0.08, today=DAY)
                for r in recs:  # globally unique ids across chunks (defects keep duplicates)
                    if r["doc_id"].startswith("CTR-"):
                        r["doc_id"] = f"CTR-{int(r['doc_id'][4:]) + start:07d}"
                write_records(tmp, recs, "csv", malformed_lines=malformed if start == 0 else 0, seed=start)
                text = tmp.read_text(encoding="utf-8")
                out.write(text if start == 0 else text.split("\n", 1)[1])
        tmp.unlink(missing_ok=True)
        print(f"generated {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--malformed", type=int, default=10, help="broken lines spliced into the input")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip", action="append", default=[], choices=sorted(WORKERS))
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args.data, args.workdir)
        print("RESULT " + json.dumps(result))
        return

    work = args.workdir or Path(tempfile.gettempdir()) / "dq-bench"
    work.mkdir(parents=True, exist_ok=True)
    data = generate(args.rows, work, args.malformed)
    print(f"machine: {os.cpu_count()} cores; input {data.stat().st_size / 1e6:.0f} MB, ruleset {RULESET.name}")
    results: dict[str, dict[str, Any]] = {}
    for kind in ("duckdb", "spark", "ge"):
        if kind in args.skip:
            continue
        if kind == "ge":
            try:
                import great_expectations  # noqa: F401
            except ImportError:
                print("ge: great-expectations not installed (pip install great-expectations==1.24.1); skipped")
                continue
        print(f"running {kind} ...", flush=True)
        res = measure(kind, data, work)
        if res:
            results[kind] = res
    rows = next((r["rows"] for r in results.values()), args.rows)

    def line(name: str, seconds: float, mem: float | None) -> None:
        mem_text = f"{mem:8.0f} MB" if mem is not None else "           "
        print(f"  {name:<40s} {seconds:8.2f} s {rows / seconds:12,.0f} rows/s {mem_text}")

    print(f"\nresults for {rows:,} rows (peak RSS = process + children)")
    if "duckdb" in results:
        d = results["duckdb"]
        line("duckdb (read+rules+write)", d["seconds"], d["peak_rss_mb"])
        line("  of which read/parse", d["read_s"], None)
    if "spark" in results:
        s = results["spark"]
        line("spark fresh (session+read+rules+write)", s["fresh_s"], s["peak_rss_mb"])
        line("spark warm (read+rules+write)", s["warm_s"], None)
        line("spark engine warm (parquet->rules->parquet)", s["engine_warm_s"], None)
        line("bare parquet read+rewrite warm", s["bare_parquet_warm_s"], None)
    if "ge" in results:
        g = results["ge"]
        line("great expectations (pandas, failing ids)", g["seconds"], g["peak_rss_mb"])
        line("  of which pandas read", g["read_s"], None)
    print("\nratios")
    if "duckdb" in results and "ge" in results:
        print(
            f"  GE / DuckDB time:                        {results['ge']['seconds'] / results['duckdb']['seconds']:.2f}x"
            "  (target >= 5x)"
        )
    if "spark" in results:
        s = results["spark"]
        print(
            f"  Spark engine / bare Parquet (warm):      {s['engine_warm_s'] / s['bare_parquet_warm_s']:.2f}x"
            "  (target <= 2x)"
        )
        if "duckdb" in results:
            print(f"  Spark warm / DuckDB:                     {s['warm_s'] / results['duckdb']['seconds']:.2f}x")
    print(json.dumps({"rows": rows, **results}, default=float))


if __name__ == "__main__":
    main()
