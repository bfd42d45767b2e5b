#!/usr/bin/env bash
# fetch-wheels.sh DIR [DEST]: download the wheels of DIR/requirements.txt into DEST (default DIR/wheels,
# gitignored) so that the Docker build or layer build installs with `pip install --no-index --find-links` and
# needs no network. `make wheels` runs it for every image function and for the domain layer.
# Lambda wheels, whatever the host: CPython and manylinux levels of the Lambda runtime's Amazon Linux
# (`tools/lambda_platform.py pip-flags`: Python 3.13, glibc <= 2.34, x86_64), so a wheel that needs a newer
# glibc than AWS's base image has fails here rather than in the image build or at cold start.
# Skipped when the wheels were fetched from the same requirements.txt with the same flags (stamp file).
set -euo pipefail
source "$(dirname "$0")/env.sh"

SRC_DIR="$(cd "${1:?usage: fetch-wheels.sh DIR [DEST]}" && pwd)"
REQ="$SRC_DIR/requirements.txt"
DEST="${2:-$SRC_DIR/wheels}"
mkdir -p "$(dirname "$DEST")"
DEST="$(cd "$(dirname "$DEST")" && pwd)/$(basename "$DEST")"
STAMP="$DEST/.fetched-from"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x "$SAM_VENV/bin/python" ]; then PY="$SAM_VENV/bin/python"
else PY=python3
fi
read -ra WHEEL_FLAGS <<<"$("$PY" "$REPO_ROOT/tools/lambda_platform.py" pip-flags)"
NAME="$(basename "$SRC_DIR")"

want="$(cat "$REQ" <(printf '%s\n' "${WHEEL_FLAGS[@]}") | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  touch "$STAMP"  # for make: the stamp is current again
  echo "[sam-local] wheels in ${DEST#"$REPO_ROOT"/} are up to date" >&2
  exit 0
fi

download() {
  # Into a fresh folder, then swap: a failed or interrupted download never leaves a half wheelhouse behind,
  # and wheels of old pins or of another Python do not linger in the build context.
  local tmp="$DEST.tmp.$$"
  rm -rf "$tmp"
  if ! "$PY" -m pip download --quiet --disable-pip-version-check "${WHEEL_FLAGS[@]}" -d "$tmp" -r "$REQ" \
      >"$SAM_LOCAL_LOGS/wheels-$NAME.log" 2>&1; then
    grep -v '^WARNING: Location' "$SAM_LOCAL_LOGS/wheels-$NAME.log" | tail -20 >&2
    rm -rf "$tmp"
    return 1
  fi
  printf '%s\n' "$want" >"$tmp/.fetched-from"
  rm -rf "$DEST"
  mv "$tmp" "$DEST"
}
step "pip download $NAME wheels" download
echo "[sam-local] $(find "$DEST" -name '*.whl' | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in ${DEST#"$REPO_ROOT"/}" >&2
