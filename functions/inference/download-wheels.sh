#!/usr/bin/env bash
# Download the image's wheels on the host (which reaches PyPI) into functions/inference/wheels, so that
# `docker build` / `sam build` of the inference image needs no network (docs/api.md, "Building the image").
#   PYTHON_VERSION=3.11 (default, matches the Dockerfile's default base) or 3.12 for an Amazon Linux 2023
#   base. The pinned onnxruntime/numpy exist only as manylinux_2_27/2_28 wheels (glibc >= 2.28).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
version="${PYTHON_VERSION:-3.11}"
abi="cp${version/./}"
"$python" -m pip download --quiet --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --python-version "$version" --implementation cp --abi "$abi" \
  --dest "$here/wheels" -r "$here/requirements.txt"
echo "wheels for Python $version in $here/wheels: $(ls "$here/wheels" | wc -l) files"
