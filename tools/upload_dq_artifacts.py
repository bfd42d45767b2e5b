"""Upload what the Glue data-quality job runs: its script, the dq_platform package zip and the rulesets.

Usage: python tools/upload_dq_artifacts.py s3://<analytics-bucket>/artifacts/dq/
(the `DataQualityArtifactsLocation` stack output; `make dq-artifacts ARTIFACTS=<that uri>`).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

from dq_platform.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]


def package_zip() -> bytes:
    """dq_platform as a zip for Glue's --extra-py-files (sources only, sorted: same input, same bytes)."""
    buf = io.BytesIO()
    src = ROOT / "src"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((src / "dq_platform").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("s3://"):
        print(__doc__, file=sys.stderr)
        return 2
    store = open_storage(argv[0])
    store.write_bytes("contracts_dq.py", (ROOT / "glue/jobs/contracts_dq.py").read_bytes(), "text/x-python")
    store.write_bytes("dq_platform.zip", package_zip(), "application/zip")
    for ruleset in sorted((ROOT / "glue/rulesets").glob("*.dqdl")):
        store.write_bytes(f"rulesets/{ruleset.name}", ruleset.read_bytes(), "text/plain")
    print(f"uploaded job script, package and rulesets to {store.uri()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
