"""Expand compact per-row status codes into Glue's row-level outcome columns.

Why: the lists `DataQualityRulesPass/Fail/Skip` repeat ~20 rule strings on every row; building them per row
in SQL and then encoding millions of strings dominated a run. Rows share a handful of distinct outcome
patterns, so the engine returns one base-3 code per row (`CompiledRuleset.coded_output_sql`), each distinct
code is decoded once, and the lists are gathered with `take` as dictionary-encoded strings (rule index ->
rule text). Spark gets the same columns per pattern from `patterns` and joins them to the rows. The values
are exactly those of `CompiledRuleset.output_sql`.

Processed rows are compact by default (`DataQualityRulesFail` and `DataQualityEvaluationResult` only, see
`schema.ROW_OUTCOME_SHAPES`): nearly every processed row has the same pass and skip lists, and
`rebuild_rule_lists` gives them back exactly from `results.json` and the row's fail list.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dq_platform.dq.compiler import CODE_COLUMN, CODE_DIGITS, PARSE_FLAG, CompiledRuleset
from dq_platform.dq.schema import EVALUATION_RESULT, QUARANTINE_REASONS, RULES_FAIL, RULES_PASS, RULES_SKIP

_RESULTS = pa.array(["Passed", "Failed"], pa.string())


class OutcomeColumns:
    """Batch transform: code columns in, Glue's list columns + evaluation result out (same column order
    as `output_sql`)."""

    def __init__(self, compiled: CompiledRuleset, errored: set[int], full: bool = True) -> None:
        """`full`: Glue's pass and skip lists too (quarantine rows, `--row-outcomes full`); else the fail
        list and the evaluation result only."""
        self.full = full
        tops = compiled.rules
        self._dictionary = pa.array([t.text for t in tops], pa.string())
        position = {id(t): k for k, t in enumerate(tops)}
        row_level = compiled.row_level_rules(errored)
        self._row_level = [position[id(t)] for t in row_level]
        row_ids = {id(t) for t in row_level}
        self._never = [k for k, t in enumerate(tops) if id(t) not in row_ids]  # always skipped
        self._n_codes = max(1, -(-len(row_level) // CODE_DIGITS))
        self._cache: dict[tuple[int, ...], tuple[list[int], list[int], list[int], bool]] = {}

    @property
    def code_columns(self) -> list[str]:
        """The code columns `coded_output_sql` returns, in order."""
        return [f"{CODE_COLUMN}{j}" for j in range(self._n_codes)]

    @property
    def list_columns(self) -> list[str]:
        """The rule-list columns this transform writes, in Glue's order."""
        return [RULES_PASS, RULES_FAIL, RULES_SKIP] if self.full else [RULES_FAIL]

    @property
    def skip_is_constant(self) -> bool:
        """No row-level rule: every row skips the same (non-empty) rules. SQL then builds the skip list from
        literals only, which Spark types as an array of non-null strings; the join must type it the same."""
        return not self._row_level and bool(self._never)

    def patterns(
        self, keys: Sequence[tuple[tuple[int, ...], bool]]
    ) -> list[tuple[list[str], list[str], list[str], str]]:
        """Glue's pass/fail/skip lists and evaluation result for each (codes, parse failed) key: for an
        engine that attaches them to the rows itself (Spark joins this small table instead of building
        ~20 rule strings per row)."""
        texts: list[str] = self._dictionary.to_pylist()
        out: list[tuple[list[str], list[str], list[str], str]] = []
        for codes, parse_failed in keys:
            passed, failed, skipped, any_fail = self._decode(tuple(codes), parse_failed)
            out.append(
                (
                    [texts[k] for k in passed],
                    [texts[k] for k in failed],
                    [texts[k] for k in skipped],
                    "Failed" if any_fail else "Passed",
                )
            )
        return out

    def _decode(self, key: tuple[int, ...], parse_failed: bool) -> tuple[list[int], list[int], list[int], bool]:
        cached = self._cache.get((*key, parse_failed))
        if cached is not None:
            return cached
        status: dict[int, int] = {}
        for i, rule in enumerate(self._row_level):
            code = key[i // CODE_DIGITS]
            status[rule] = (code // 3 ** (i % CODE_DIGITS)) % 3  # 0 fail, 1 pass, 2 skip (NULL)
        passed = [k for k in self._row_level if status[k] == 1]
        failed = [k for k in self._row_level if status[k] == 0]
        skipped = sorted(self._never + [k for k in self._row_level if status[k] == 2])
        out = (passed, failed, skipped, parse_failed or bool(failed))
        self._cache[(*key, parse_failed)] = out
        return out

    def _lists(self, patterns: list[list[int]], inverse: np.ndarray) -> pa.Array:
        offsets = np.zeros(len(patterns) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum([len(p) for p in patterns])
        flat = np.fromiter((k for p in patterns for k in p), dtype=np.int32, count=int(offsets[-1]))
        values = pa.DictionaryArray.from_arrays(pa.array(flat, pa.int32()), self._dictionary)
        distinct = pa.ListArray.from_arrays(pa.array(offsets), values)
        return pc.take(distinct, pa.array(inverse))

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        names = batch.schema.names
        codes = [batch.column(f"{CODE_COLUMN}{j}").to_numpy(zero_copy_only=False) for j in range(self._n_codes)]
        parse = batch.column(PARSE_FLAG).to_numpy(zero_copy_only=False).astype(np.int64)
        keys: list[tuple[tuple[int, ...], bool]]
        if self._n_codes == 1:  # the usual case (<= 39 row-level rules): one integer key, hashed
            combined = pa.array(codes[0] * 2 + parse)  # < 2 * 3**39 < 2**63
            uniques = pc.unique(combined)
            inverse = pc.index_in(combined, uniques).to_numpy(zero_copy_only=False)
            keys = [((k // 2,), bool(k % 2)) for k in uniques.to_pylist()]
        else:
            stacked = np.stack([*codes, parse], axis=1)
            rows, inverse = np.unique(stacked, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            keys = [(tuple(int(x) for x in row[:-1]), bool(row[-1])) for row in rows]
        decoded = [self._decode(code, parse_failed) for code, parse_failed in keys]
        drop = {f"{CODE_COLUMN}{j}" for j in range(self._n_codes)} | {PARSE_FLAG, QUARANTINE_REASONS}
        keep = [n for n in names if n not in drop]
        arrays = [batch.column(n) for n in keep]
        result = pc.take(_RESULTS, pa.array(np.asarray([int(d[3]) for d in decoded], dtype=np.int64)[inverse]))
        failed = self._lists([d[1] for d in decoded], inverse)
        if self.full:
            passed = self._lists([d[0] for d in decoded], inverse)
            arrays += [passed, failed, self._lists([d[2] for d in decoded], inverse), result]
        else:
            arrays += [failed, result]
        out_names = [*keep, *self.list_columns, EVALUATION_RESULT]
        if QUARANTINE_REASONS in names:
            arrays.append(batch.column(QUARANTINE_REASONS))
            out_names.append(QUARANTINE_REASONS)
        return pa.RecordBatch.from_arrays(arrays, names=out_names)


def rebuild_rule_lists(
    results: Mapping[str, Any], failed: Sequence[str], skipped: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """(DataQualityRulesPass, DataQualityRulesSkip) of a compact processed row, as `--row-outcomes full`
    writes them, from the results document and the row's DataQualityRulesFail.

    Pass: the row-level rules (`row_outcomes.row_level_rules`, rule order) the row did not fail; Skip:
    every other rule (dataset-level rules, rules that errored), sorted by rule order. A row-level rule
    can also skip a row (outside its `where`, a NULL key for `IsUnique`); `row_outcomes.processed_skips`
    names the rules that did so on some processed row: when it is empty (the shipped ruleset) the rebuild
    is exact, otherwise pass such rules' skips for this row as `skipped`."""
    meta = results.get("row_outcomes") or {}
    row_level = list(meta.get("row_level_rules") or [])
    fails, skips = set(failed), set(skipped)
    passed = [r for r in row_level if r not in fails and r not in skips]
    level = set(row_level)
    rules = [o["Rule"] for o in results.get("ruleOutcomes", [])]
    skip = [r for r in rules if r not in level or r in skips]
    return passed, skip
