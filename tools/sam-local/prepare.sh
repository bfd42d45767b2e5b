#!/usr/bin/env bash
# Everything `tools/sam-local/sam.sh build` / `sam.sh local` need on a machine that reaches PyPI and Debian but
# no container registry: a running Docker engine, the local Lambda base image (stand-in), the wheels of each
# image function and of the layer, and the generated template copies that point local builds at the stand-in.
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
"$here/fetch-wheels.sh" "$REPO_ROOT/layers/domain" "$REPO_ROOT/build/wheels/layer"
"$SAM_VENV/bin/python" "$here/local_templates.py" write --image "$LAMBDA_LOCAL_IMAGE" >/dev/null
echo "[sam-local] ready: tools/sam-local/sam.sh build && tools/sam-local/sam.sh local start-api" >&2
