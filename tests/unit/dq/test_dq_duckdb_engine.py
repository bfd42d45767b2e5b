"""How the DuckDB engine keeps memory and time bounded without changing an outcome: the statuses-only row
pass lined up by `_row_id` (narrowed, unsorted), the run's Arrow pool, and Parquet dictionaries only where
they pay (issue #16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dq_platform.dq.arrow_memory import arrow_pool, run_pool
from dq_platform.dq.compiler import check_ruleset
from dq_platform.dq.dialect import DUCKDB
from dq_platform.dq.dqdl import parse
from dq_platform.dq.engines import duckdb_engine
from dq_platform.dq.engines.duckdb_engine import (
    DuckDBEngine,
    _dictionary_columns,
    _parquet_writer,
    _positions,
    _runs_in_order,
)
from dq_platform.dq.evaluation import column_types
from dq_platform.dq.pipeline import RunOutputs, run
from dq_platform.dq.readers import InputFile, parse_files
from dq_platform.dq.schema import ROW_ID
from dq_platform.sample_data import generate_records, write_records
from tests.unit.dq.helpers_dq import NOW

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RULESET = (ROOT / "glue" / "rulesets" / "contracts.dqdl").read_text()


def test_positions_place_each_row_id_and_refuse_anything_but_a_permutation() -> None:
    assert _positions(np.array([2, 0, 1]), 3).tolist() == [1, 2, 0]
    assert _positions(np.array([], dtype=np.int64), 0).tolist() == []
    assert _positions(np.array([0, 0, 1]), 3) is None  # a row twice, another missing
    assert _positions(np.array([0, 1, 3]), 3) is None  # an id past the input
    assert _positions(np.array([-1, 0, 1]), 3) is None
    assert _positions(np.array([0, 1]), 3) is None  # a row dropped


def _sample_with_malformed_lines(tmp_path: Path) -> bytes:
    """Defects and malformed lines (parse errors in the middle of the input)."""
    path = tmp_path / "in.csv"
    write_records(path, generate_records(400, seed=5, defect_rate=0.2), "csv", malformed_lines=6, seed=5)
    return path.read_bytes()


def _statuses(engine: DuckDBEngine, view: str, names: list[str]) -> list[tuple[object, ...]]:
    cols = ", ".join([ROW_ID, *names])
    return engine.query_rows(f"SELECT {cols} FROM {view} ORDER BY {ROW_ID}")


def _statuses_in(*batches: list[int]) -> pa.Table:
    schema = pa.schema([(ROW_ID, pa.int64()), ("_r1", pa.int8())])
    return pa.Table.from_batches(
        [
            pa.record_batch([pa.array(b, pa.int64()), pa.array([i % 3 for i in b], pa.int8())], schema=schema)
            for b in batches
        ],
        schema=schema,
    )


def test_status_runs_out_of_turn_are_put_back_in_row_order() -> None:
    got = _runs_in_order(_statuses_in([4, 5, 6, 2, 3], [], [0, 1]), 7)
    assert got is not None
    assert got.column(ROW_ID).to_pylist() == list(range(7))
    assert got.column("_r1").to_pylist() == [i % 3 for i in range(7)]  # each status stays with its row
    interleaved = _runs_in_order(_statuses_in([0, 2], [1, 3]), 4)  # runs of one row each
    assert interleaved is not None
    assert interleaved.column(ROW_ID).to_pylist() == [0, 1, 2, 3]
    assert _runs_in_order(_statuses_in([], []), 0) is not None
    assert _runs_in_order(_statuses_in([0, 1], [1, 2]), 4) is None  # a row twice, another missing
    assert _runs_in_order(_statuses_in([0, 1], [3, 4]), 4) is None  # an id past the input
    assert _runs_in_order(_statuses_in([1, 2], [3, 4]), 4) is None  # no row 0
    assert _runs_in_order(_statuses_in([0, 1], [2, 3]), 5) is None  # a row dropped


def test_too_many_runs_are_left_to_one_take(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_engine, "_MAX_RUNS", 2)
    assert _runs_in_order(_statuses_in([1], [0], [2]), 3) is None  # three runs
    assert _runs_in_order(_statuses_in([1, 2], [0]), 3) is not None


@pytest.mark.parametrize("physical", ["as read", "reversed"])
def test_aligned_statuses_equal_the_materialised_row_pass(tmp_path: Path, physical: str) -> None:
    parsed = parse_files([InputFile("in.csv", "csv", _sample_with_malformed_lines(tmp_path))])
    if physical == "reversed":  # not in _row_id order: the statuses are placed by one take
        parsed.table = parsed.table.take(pa.array(np.arange(parsed.table.num_rows)[::-1]))
    ids = parsed.table.column(ROW_ID).to_numpy()
    if physical == "as read":
        assert (np.diff(ids) > 0).all()  # the readers place malformed records by record number, too
    compiled = check_ruleset(
        parse(RULESET), column_types(parsed.table.column_names), parsed.source_columns, NOW, DUCKDB, {}
    )
    names = [n.status_col for n in compiled.active(set()) if n.status_sql is not None]

    aligned = DuckDBEngine()
    aligned.load("parsed", parsed.table, tmp_path)
    aligned.row_pass("evaluated", "parsed", compiled, set())
    reference = DuckDBEngine()
    reference.load("parsed", parsed.table, tmp_path)
    reference.create_view("evaluated", compiled.evaluated_sql("parsed", set()))

    got = _statuses(aligned, "evaluated", names)
    assert got == _statuses(reference, "evaluated", names)
    assert len(got) == parsed.table.num_rows
    assert {v for row in got for v in row[1:]} <= {0, 1, None}
    table = aligned._tables["evaluated"]
    assert all(table.schema.field(n).type == pa.int8() for n in names)  # narrowed: a quarter of INTEGER
    assert table.column(ROW_ID).to_numpy().tolist() == ids.tolist()  # the data kept its physical order
    assert aligned.keeps_input_order is (physical == "as read")


def _fail_inside(seen: list[str]) -> None:
    with arrow_pool() as pool:
        seen += [pa.default_memory_pool().backend_name, pool.backend_name]
        raise RuntimeError("boom")


def test_arrow_pool_is_switched_for_the_block_and_restored_after_an_error() -> None:
    before = pa.default_memory_pool().backend_name
    seen: list[str] = []
    with pytest.raises(RuntimeError):
        _fail_inside(seen)
    assert seen == [run_pool().backend_name] * 2
    assert pa.default_memory_pool().backend_name == before


def test_run_pool_is_jemalloc_unless_the_user_chose_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow has no jemalloc: the default pool stays")
    assert run_pool().backend_name == "jemalloc"
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    assert run_pool().backend_name == pa.default_memory_pool().backend_name


def test_a_run_leaves_the_default_pool_as_it_found_it(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(_sample_with_malformed_lines(tmp_path))
    outputs = RunOutputs(str(tmp_path / "p"), str(tmp_path / "q"), str(tmp_path / "results.json"))
    before = pa.default_memory_pool().backend_name
    res = run(RULESET, "contracts", [src], outputs, DuckDBEngine(), now=NOW).results
    assert pa.default_memory_pool().backend_name == before
    assert res["rows_in"] == res["rows_processed"] + res["rows_quarantined"] > 400


def test_dictionary_pages_only_for_repeating_columns_and_rule_lists(tmp_path: Path) -> None:
    n = 800
    rules = pa.DictionaryArray.from_arrays(pa.array([0, 1] * (n // 2), pa.int32()), pa.array(["r1", "r2"]))
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(n), pa.int64()),
            "text": pa.array([f"clause {i}" for i in range(n)]),
            "currency": pa.array(["USD", "EUR", "GBP"] * (n // 3) + ["USD"] * (n % 3)),
            "fails": pa.ListArray.from_arrays(pa.array(range(n + 1), pa.int32()), rules),
            "result": rules,
        }
    )
    assert _dictionary_columns(batch) == ["currency", "fails.list.element", "result"]
    path = tmp_path / "out.parquet"
    writer = _parquet_writer(path, batch)
    writer.write_batch(batch)
    writer.close()
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encoded = {
        meta.column(i).path_in_schema: "RLE_DICTIONARY" in meta.column(i).encodings for i in range(meta.num_columns)
    }
    assert encoded == {"id": False, "text": False, "currency": True, "fails.list.element": True, "result": True}
    back = pq.read_table(path)
    assert back.column("text").to_pylist() == batch.column("text").to_pylist()
    assert back.column("fails").to_pylist() == [["r1"], ["r2"]] * (n // 2)


def _processed(tmp_path: Path, src: Path, tag: str) -> tuple[list[str], list[dict[str, object]]]:
    out = tmp_path / tag
    outputs = RunOutputs(str(out / "p"), str(out / "q"), str(out / "results.json"))
    res = run(RULESET, "contracts", [src], outputs, DuckDBEngine(), now=NOW).results
    files = sorted((out / "p").rglob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert len(rows) == res["rows_processed"]
    return [f.name for f in files], rows


def test_processed_parts_are_slices_of_the_row_pass_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut into two parts (one slice of the row pass's table each), the processed rows are the one-part
    output row for row, in `_row_id` order across the files."""
    src = tmp_path / "in.csv"
    src.write_bytes(_sample_with_malformed_lines(tmp_path))
    one_names, one = _processed(tmp_path, src, "one")
    monkeypatch.setattr(duckdb_engine, "_ROWS_PER_PART", 100)
    two_names, two = _processed(tmp_path, src, "two")
    assert len(one_names) == 1
    assert len(two_names) == 2
    assert two == one
    ids = [r[ROW_ID] for r in two]
    assert ids == sorted(ids)
