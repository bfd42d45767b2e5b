#!/usr/bin/env bash
# Everything `sam build` / `sam local` need on a machine that reaches PyPI and Debian but no container
# registry: a running Docker engine, the local Lambda base image and each image function's wheels.
# Idempotent: each step skips itself when its inputs did not change. The e2e tests run the same steps.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/env.sh"
"$here/ensure-docker.sh"
"$here/build-base-image.sh"
for dockerfile in "$REPO_ROOT"/functions/*/Dockerfile; do
  fn="$(dirname "$dockerfile")"
  if [ -f "$fn/requirements.txt" ]; then "$here/fetch-wheels.sh" "$fn"; fi
done
echo "[sam-local] ready: sam build && sam local start-api (SAM CLI: $SAM_VENV/bin/sam)" >&2
