"""DQ engine benchmark: DuckDB vs a bare DuckDB CSV->Parquet rewrite, Spark (fresh and warm) vs a bare Parquet
read+rewrite, and Great Expectations, at one reference size plus optional scale sizes.

    python benchmarks/dq_bench.py --rows 1000000 --scale 100000,5000000   # `make bench`
    python benchmarks/dq_bench.py                                         # CI-size smoke run (20,000 rows)

Each measurement runs in its own process so peak memory (process + children, e.g. Spark's JVM) is
measured per engine. Great Expectations (`great-expectations==1.24.1`, pandas) is optional: installed
only for this benchmark; without it that line is skipped. Prints, from one run, the three ratios the
project targets (issue #16): DuckDB engine <= 2x a bare DuckDB `read_csv` -> Parquet rewrite of the same
CSV; Great Expectations >= 10x the DuckDB engine; Spark engine (warm) <= 2x a bare Parquet read+rewrite
in the same session. `--scale` sizes run DuckDB (and its bare rewrite; 5M+ only where memory allows) and
Spark up to the reference size, printing time per row and peak RSS.
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
from datetime import date, datetime, timedelta
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
    evaluated_s = next(t for m, t in marks if m.startswith("evaluated in"))
    written_s = next((t for m, t in marks if m.startswith("committing")), total)
    return {
        "seconds": total,
        "read_s": read_s,
        "rules_s": evaluated_s - read_s,  # compile, load, validation, row pass, aggregates
        "write_s": written_s - evaluated_s,  # processed + quarantine Parquet, row counts
        "commit_s": total - written_s,  # publish + results.json
        "rows": res["rows_in"],
        "quarantined": res["rows_quarantined"],
    }


def worker_duckdb_bare(data: Path, work: Path) -> dict[str, Any]:
    """The floor for the DuckDB engine: DuckDB's own CSV reader straight into one zstd Parquet file (malformed
    lines kept as padded rows so that it reads as many rows as the engine; types from its sniffer; no rules,
    no record check)."""
    import duckdb

    out = work / "bare-duck.parquet"
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect(":memory:")
    src = str(data).replace("'", "''")
    con.execute(
        f"COPY (SELECT * FROM read_csv('{src}', header = true, strict_mode = false, null_padding = true, "
        f"ignore_errors = true)) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    seconds = time.perf_counter() - t0
    rows = con.execute(f"SELECT COUNT(*) FROM read_parquet('{out}')").fetchone()
    con.close()
    return {"seconds": seconds, "rows": int(rows[0]) if rows else 0}


def worker_spark(data: Path, work: Path) -> dict[str, Any]:
    from dq_platform.dq.dqdl import parse
    from dq_platform.dq.engines.spark_engine import SparkEngine, local_spark_session
    from dq_platform.dq.pipeline import column_types, evaluate_loaded, run, write_outputs
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
        write_outputs(engine, ev, {"processed": out / "p", "quarantine": out / "q"}, "part")  # as pipeline.run does
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
    import importlib

    import pandas as pd

    gx: Any = importlib.import_module("great_expectations")  # untyped use: its stubs vary by version
    gxe: Any = importlib.import_module("great_expectations.expectations")

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
    fresh = (NOW - timedelta(days=1100)).isoformat()  # DataFreshness "effective_date" <= 1100 days
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
        gxe.ExpectColumnValuesToBeBetween(column="effective_date", min_value=fresh),  # DataFreshness
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


WORKERS = {"duckdb": worker_duckdb, "duckdb_bare": worker_duckdb_bare, "spark": worker_spark, "ge": worker_ge}


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


def _sizes(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _line(name: str, seconds: float, rows: int, mem: float | None) -> None:
    mem_text = f"{mem:8.0f} MB" if mem is not None else "           "
    per_row = seconds / rows * 1e6 if rows else 0.0
    print(f"  {name:<44s} {seconds:8.2f} s {rows / seconds:12,.0f} rows/s {per_row:8.2f} us/row {mem_text}")


def _runs(result: dict[str, Any]) -> None:
    runs = result.get("runs_s") or []
    if len(runs) > 1:
        print(f"    every run: {' / '.join(f'{r:.2f}' for r in runs)} s (the best is shown)")


def _report(rows: int, results: dict[str, dict[str, Any]]) -> None:
    print(f"\nresults for {rows:,} rows (peak RSS = process + children)")
    if "duckdb" in results:
        d = results["duckdb"]
        _line("duckdb engine (read+rules+write+commit)", d["seconds"], rows, d["peak_rss_mb"])
        _runs(d)
        for key, label in (
            ("read_s", "read/parse"),
            ("rules_s", "rules"),
            ("write_s", "write"),
            ("commit_s", "commit"),
        ):
            _line(f"  of which {label}", d[key], rows, None)
    if "duckdb_bare" in results:
        b = results["duckdb_bare"]
        _line("bare duckdb read_csv -> parquet", b["seconds"], rows, b["peak_rss_mb"])
        _runs(b)
    if "spark" in results:
        s = results["spark"]
        _line("spark fresh (session+read+rules+write)", s["fresh_s"], rows, s["peak_rss_mb"])
        _line("spark warm (read+rules+write)", s["warm_s"], rows, None)
        _line("spark engine warm (parquet->rules->parquet)", s["engine_warm_s"], rows, None)
        _line("bare parquet read+rewrite warm", s["bare_parquet_warm_s"], rows, None)
    if "ge" in results:
        g = results["ge"]
        _line("great expectations (pandas, failing ids)", g["seconds"], rows, g["peak_rss_mb"])
        _runs(g)
        _line("  of which pandas read", g["read_s"], rows, None)


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    d, b, g, s = (results.get(k) for k in ("duckdb", "duckdb_bare", "ge", "spark"))
    if d and b:
        out["duckdb_engine_over_bare"] = d["seconds"] / b["seconds"]
    if d and g:
        out["ge_over_duckdb"] = g["seconds"] / d["seconds"]
    if s:
        out["spark_engine_over_bare"] = s["engine_warm_s"] / s["bare_parquet_warm_s"]
    labels = {
        "duckdb_engine_over_bare": ("DuckDB engine / bare DuckDB read_csv->Parquet", "<= 2x"),
        "ge_over_duckdb": ("Great Expectations / DuckDB engine", ">= 10x"),
        "spark_engine_over_bare": ("Spark engine / bare Parquet rewrite (warm)", "<= 2x"),
    }
    for key, (label, target) in labels.items():
        value = f"{out[key]:.2f}x" if key in out else "not measured"
        print(f"  {label:<48s} {value:>12s}  (target {target})")
    return out


def _enough_memory(rows: int) -> bool:
    """5M-row DuckDB runs hold the input's Arrow table (~0.4 GB per 1M rows) and its copies; skip them
    where the machine has less than ~1.5 GB per 1M rows available."""
    import psutil

    return bool(psutil.virtual_memory().available >= rows * 1500)


def _warm(path: Path) -> None:
    """Read the input once before each measurement, so that every engine reads it from the page cache:
    this VM reclaims the cache in the background, and the same 5M-row read took 16 s warm and 39 s from
    disk in consecutive runs (docs/dq.md)."""
    with path.open("rb") as handle:
        while handle.read(64 << 20):
            pass


def _measure_size(
    rows: int, kinds: list[str], args: argparse.Namespace, work: Path, repeat: int = 1
) -> dict[str, dict[str, Any]]:
    """Each kind in its own process, `repeat` rounds taken in turn (engine, bare, GE, engine, ...) so that
    a slow spell hits every kind alike; each kind keeps its fastest round, and `runs_s` lists them all.
    Spark runs once: its worker already takes the best of two warm runs for both of its figures."""
    data = generate(rows, work, args.malformed)
    print(f"input {rows:,} rows: {data.stat().st_size / 1e6:.0f} MB", flush=True)
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[float]] = {}
    for round_ in range(repeat):
        for kind in kinds:
            if kind == "spark" and round_:
                continue
            counted = repeat > 1 and kind != "spark"
            print(f"running {kind} ({round_ + 1}/{repeat}) ..." if counted else f"running {kind} ...", flush=True)
            _warm(data)
            res = measure(kind, data, work)
            if not res:
                continue
            if "seconds" in res:
                runs.setdefault(kind, []).append(res["seconds"])
            if kind not in results or res.get("seconds", 0.0) < results[kind].get("seconds", 0.0):
                results[kind] = res
    for kind, seconds in runs.items():
        results[kind]["runs_s"] = seconds
    return results


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="reference size: the ratios (make bench: 1000000)")
    parser.add_argument("--scale", default="", help="more sizes, comma-separated (make bench: 100000,5000000)")
    parser.add_argument("--malformed", type=int, default=10, help="broken lines spliced into the input")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip", action="append", default=[], choices=sorted(WORKERS))
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds at the reference size, best kept per kind (make bench: 3)"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args.data, args.workdir)
        print("RESULT " + json.dumps(result))
        return

    work = args.workdir or Path(tempfile.gettempdir()) / "dq-bench"
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, load average {_load()} (1/5/15 min); ruleset {RULESET.name}")
    kinds = [k for k in ("duckdb", "duckdb_bare", "spark", "ge") if k not in args.skip]
    if "ge" in kinds:
        try:
            import great_expectations  # noqa: F401
        except ImportError:
            print("ge: great-expectations not installed (pip install great-expectations==1.24.1); skipped")
            kinds.remove("ge")
    reference = _measure_size(args.rows, kinds, args, work, max(1, args.repeat))
    _report(next((r["rows"] for r in reference.values()), args.rows), reference)
    rounds = "one run" if args.repeat <= 1 else f"best of {args.repeat} runs each"
    rounds += "; Spark: best of 2 warm runs" if "spark" in kinds else ""
    print(f"\nratios at {args.rows:,} rows ({rounds}; load average now {_load()})")
    summary: dict[str, Any] = {"rows": args.rows, "ratios": _ratios(reference), "results": reference, "scale": {}}
    for size in _sizes(args.scale):
        scale_kinds = [k for k in kinds if k != "ge" and (k != "spark" or size <= args.rows)]
        if size >= 5_000_000 and not _enough_memory(size):
            print(f"\n{size:,} rows: skipped (not enough memory available)")
            continue
        found = _measure_size(size, scale_kinds, args, work)
        _report(next((r["rows"] for r in found.values()), size), found)
        summary["scale"][str(size)] = found
    print(f"\nload average at the end {_load()}")
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
