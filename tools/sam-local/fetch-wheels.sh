#!/usr/bin/env bash
# fetch-wheels.sh FUNCTION_DIR: download the wheels of FUNCTION_DIR/requirements.txt into FUNCTION_DIR/wheels
# (gitignored) so that its Docker build installs with `pip install --no-index --find-links` and needs no network.
# Lambda wheels, whatever the host: CPython 3.11, x86_64, manylinux (2014 = glibc 2.17 and up; onnxruntime
# only ships manylinux_2_27/2_28 wheels, which Amazon Linux 2023 (glibc 2.34) and the Debian stand-in run).
# Skipped when the wheels were fetched from the same requirements.txt with the same flags (stamp file).
set -euo pipefail
source "$(dirname "$0")/env.sh"

FUNC_DIR="$(cd "${1:?usage: fetch-wheels.sh FUNCTION_DIR}" && pwd)"
REQ="$FUNC_DIR/requirements.txt"
DEST="$FUNC_DIR/wheels"
STAMP="$DEST/.fetched-from"
PY="${PYTHON:-$SAM_VENV/bin/python}"
WHEEL_FLAGS=(--only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
             --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)

want="$(cat "$REQ" <(printf '%s\n' "${WHEEL_FLAGS[@]}") | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "[sam-local] wheels in ${DEST#"$REPO_ROOT"/} are up to date" >&2
  exit 0
fi

download() {
  # Into a fresh folder, then swap: a failed or interrupted download never leaves a half wheelhouse behind,
  # and wheels of old pins do not pile up in the Docker build context.
  local tmp="$DEST.tmp.$$"
  rm -rf "$tmp"
  if ! "$PY" -m pip download --quiet --disable-pip-version-check "${WHEEL_FLAGS[@]}" -d "$tmp" -r "$REQ" \
      >"$SAM_LOCAL_LOGS/wheels-$(basename "$FUNC_DIR").log" 2>&1; then
    grep -v '^WARNING: Location' "$SAM_LOCAL_LOGS/wheels-$(basename "$FUNC_DIR").log" | tail -20 >&2
    rm -rf "$tmp"
    return 1
  fi
  printf '%s\n' "$want" >"$tmp/.fetched-from"
  rm -rf "$DEST"
  mv "$tmp" "$DEST"
}
step "pip download $(basename "$FUNC_DIR") wheels" download
echo "[sam-local] $(find "$DEST" -name '*.whl' | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in ${DEST#"$REPO_ROOT"/}" >&2
