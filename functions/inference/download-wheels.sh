#!/usr/bin/env bash
# Download the image's wheels on the host (which reaches PyPI) into functions/inference/wheels, so that
# `docker build` / `sam build` of the inference image needs no network (docs/api.md, "Building the image").
# `make wheels` (and `make build`) do the same for every image function and the layer; this is the one-off form.
# The wheels are for the Lambda base image's Python and glibc (tools/lambda_platform.py: 3.13, Amazon Linux 2023).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../tools/sam-local/fetch-wheels.sh" "$here"
