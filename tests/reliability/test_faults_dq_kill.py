"""`dqp dq run` killed with SIGKILL at random points: earlier outputs survive, a re-run completes them.

Run A commits its outputs; run B (more data, different content) is then started and SIGKILLed, each
time from the state A left (so every kill lands on a fresh B), at seeded random delays plus kills timed
on B's progress lines so the commit phase itself is hit. After every kill: A's files are byte-identical,
results.json is a complete document (A's, or B's if B had finished), and any of B's files already
visible are complete (same hash as an uninterrupted run). Then B is killed twice more in a row without
restoring, re-run to the end, and the folder must equal, file for file, a control folder where A and B
ran without interruption. DQP_KILLS sets the number of random-delay kills.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dq_platform.sample_data import generate_records, write_records
from tests.reliability.support import DQP, ROOT, RULESET, scrubbed_env

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

SEED = 20261125
RANDOM_KILLS = int(os.environ.get("DQP_KILLS", "4"))
# Kills timed on these progress lines (plus 0-80 ms), so the publish steps are hit on purpose.
PHASE_KILLS = ("evaluating", "writing processed", "committing outputs", "committing outputs")
STATS = ROOT / "build" / "reliability" / "kills.json"
VOLATILE = ("started_at", "finished_at")  # wall-clock stamps: the only fields two runs may differ in


def _cmd(input_name: str) -> list[str]:
    return [
        str(DQP),
        "dq",
        "run",
        "-r",
        str(RULESET),
        "-i",
        input_name,
        "-o",
        "out",
        "--now",
        "2026-06-01T00:00:00",
        "--ingest-date",
        "2026-06-01",
    ]


def _run(cwd: Path, input_name: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_cmd(input_name), cwd=cwd, env=scrubbed_env(), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every published file under out/ (results.json without its time stamps).

    out/_staging/ is the run's scratch area, not output (temporary: in S3 the processed bucket's lifecycle
    rule on `_staging/`, stacks/foundation.yaml, expires it).
    """
    out: dict[str, str] = {}
    for path in sorted(p for p in (root / "out").rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("out/_staging/"):
            continue
        data = path.read_bytes()
        if path.name == "results.json":
            doc = json.loads(data)
            data = json.dumps({k: v for k, v in doc.items() if k not in VOLATILE}, sort_keys=True).encode()
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def _inputs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_records(folder / "batch_a.csv", generate_records(3_000, seed=1), "csv", malformed_lines=3)
    write_records(folder / "batch_b.csv", generate_records(15_000, seed=2), "csv", malformed_lines=7, seed=2)


def _work_seconds(stderr: str) -> float:
    """Seconds from "reading input" to "committing outputs" in a run's progress lines ("[  1.3s] ...")."""
    stamps = {
        line.split("] ", 1)[1]: float(line[1:].split("s]", 1)[0])
        for line in stderr.splitlines()
        if line.startswith("[")
    }
    return stamps["committing outputs"] - stamps["reading input"]


def _kill_after(cwd: Path, marker: str, delay_s: float) -> dict[str, Any]:
    """Start run B, SIGKILL it `delay_s` after it printed `marker`; what it had said by then."""
    log = cwd / "b.stderr"
    with log.open("wb") as err:
        proc = subprocess.Popen(_cmd("batch_b.csv"), cwd=cwd, env=scrubbed_env(), stdout=subprocess.DEVNULL, stderr=err)
    started = time.monotonic()
    while marker not in log.read_text() and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(delay_s)
    finished_first = proc.poll() is not None
    if not finished_first:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if line.startswith("[")]
    return {
        "after_s": round(time.monotonic() - started, 3),
        "trigger": f"{marker} + {delay_s * 1000:.0f} ms",
        "last_progress": lines[-1].split("] ", 1)[-1] if lines else "(before the first progress line)",
        "finished_before_kill": finished_first,
        "returncode": proc.returncode,
    }


def test_sigkill_at_random_points_keeps_outputs_and_rerun_is_identical(tmp_path: Path) -> None:
    control, killed = tmp_path / "control", tmp_path / "killed"
    _inputs(control)
    _inputs(killed)

    _run(control, "batch_a.csv")
    work_s = _work_seconds(_run(control, "batch_b.csv").stderr)
    expected = _tree(control)

    _run(killed, "batch_a.csv")
    after_a = _tree(killed)
    a_results = json.loads((killed / "out" / "results.json").read_text())
    b_files = {k: v for k, v in expected.items() if k not in after_a or after_a[k] != v}
    assert "out/results.json" in b_files
    assert any(k.startswith("out/processed/") for k in b_files)

    snapshot = tmp_path / "after-a"
    shutil.copytree(killed / "out", snapshot)

    rng = random.Random(SEED)
    # Random points across the run's work (a kill during interpreter start-up proves nothing), plus
    # points just after each phase begins.
    plan = [("reading input", rng.uniform(0.0, 1.2 * work_s)) for _ in range(RANDOM_KILLS)]
    plan += [(marker, rng.uniform(0.0, 0.08)) for marker in PHASE_KILLS]
    rng.shuffle(plan)
    # The last two kills follow each other without a restore: a retried run killed again.
    plan += [("reading input", rng.uniform(0.0, 1.2 * work_s)), ("committing outputs", rng.uniform(0.0, 0.02))]
    kills: list[dict[str, Any]] = []
    for n, (marker, delay) in enumerate(plan):
        if n < len(plan) - 1:
            shutil.rmtree(killed / "out")
            shutil.copytree(snapshot, killed / "out")
        kill = _kill_after(killed, marker, delay)
        now = _tree(killed)
        # A's outputs: every file still there, byte for byte (results.json may have become B's).
        for rel, digest in after_a.items():
            if rel == "out/results.json":
                continue
            assert now.get(rel) == digest, f"{rel} changed after a kill ({kill})"
        results = json.loads((killed / "out" / "results.json").read_text())  # never half-written
        assert results["run_id"] in (
            a_results["run_id"],
            json.loads((control / "out" / "results.json").read_text())["run_id"],
        )
        # B's files that are visible are whole: published atomically under their final names.
        for rel, digest in now.items():
            if rel in after_a and rel != "out/results.json":
                continue
            if rel == "out/results.json" and results["run_id"] == a_results["run_id"]:
                continue
            assert expected.get(rel) == digest, f"{rel} is partial or unexpected after a kill ({kill})"
        kill["b_files_visible"] = sorted(rel for rel in now if rel in b_files and now[rel] == b_files[rel])
        kill["staging_left"] = (killed / "out" / "_staging").exists()
        kills.append(kill)

    rerun = _run(killed, "batch_b.csv")
    final = _tree(killed)
    leftovers = sorted(p.relative_to(killed).as_posix() for p in (killed / "out").rglob("*") if ".tmp" in p.name)
    STATS.parent.mkdir(parents=True, exist_ok=True)
    STATS.write_text(
        json.dumps(
            {
                "seed": SEED,
                "run_b_work_seconds": round(work_s, 2),
                "kills": kills,
                "killed_mid_run": sum(not k["finished_before_kill"] for k in kills),
                "identical_after_rerun": final == expected,
            },
            indent=2,
        )
        + "\n"
    )
    assert leftovers == []
    assert final == expected, {
        k: (final.get(k), expected.get(k)) for k in set(final) | set(expected) if final.get(k) != expected.get(k)
    }
    assert not (killed / "out" / "_staging").exists()
    assert "SUCCEEDED" in rerun.stdout
    assert sum(not k["finished_before_kill"] for k in kills) >= len(plan) // 2
