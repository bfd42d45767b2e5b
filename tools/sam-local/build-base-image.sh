#!/usr/bin/env bash
# Build the local stand-in for the Lambda Python 3.11 base image and tag it with both names SAM uses
# (public.ecr.aws/lambda/python:3.11 for image functions, ...:3.11-x86_64 for zip functions).
# Skipped when an image built from the same recipe exists (label dq.sam-local.recipe = hash of the inputs);
# the debootstrap rootfs image is reused whenever present (FORCE_ROOTFS=1 rebuilds it).
set -euo pipefail
source "$(dirname "$0")/env.sh"

BASE_SRC="$SAM_LOCAL_TOOLS/lambda-base"
CONTEXT="$SAM_LOCAL_WORK/base-context"
ROOTFS="$SAM_LOCAL_WORK/rootfs"
PY="${PYTHON:-$SAM_VENV/bin/python}"
RIE="$("$SAM_VENV/bin/python" -c 'import pathlib, samcli; print(pathlib.Path(samcli.__file__).parent / "local/rapid/aws-lambda-rie-x86_64")')"
WHEEL_FLAGS=(--only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311)

recipe_hash() {
  { sha256sum "$BASE_SRC"/Dockerfile "$BASE_SRC"/bootstrap "$BASE_SRC"/lambda-entrypoint.sh \
      "$BASE_SRC"/requirements.txt "$RIE" | awk '{print $1}'; } | sha256sum | cut -c1-16
}
RECIPE="$(recipe_hash)"

built_recipe() {  # prints the recipe label of an existing image, nothing when the image is missing
  docker image inspect -f '{{ index .Config.Labels "dq.sam-local.recipe" }}' "$1" 2>/dev/null || true
}

if [ "$(built_recipe "$LAMBDA_BASE_TAG")" = "$RECIPE" ] && [ "$(built_recipe "$LAMBDA_ZIP_TAG")" = "$RECIPE" ]; then
  echo "[sam-local] base image $LAMBDA_BASE_TAG is up to date (recipe $RECIPE)" >&2
  exit 0
fi

debootstrap_rootfs() {
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase --include=python3-venv,ca-certificates \
    bookworm "$ROOTFS" http://deb.debian.org/debian >"$SAM_LOCAL_LOGS/debootstrap.log" 2>&1 \
    || { tail -20 "$SAM_LOCAL_LOGS/debootstrap.log" >&2; return 1; }
  chroot "$ROOTFS" apt-get clean
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
}
import_rootfs() {
  tar -C "$ROOTFS" -c . | docker import - "$ROOTFS_TAG" >/dev/null
  rm -rf "$ROOTFS"
}
prepare_context() {
  rm -rf "$CONTEXT"
  mkdir -p "$CONTEXT"
  cp "$BASE_SRC"/Dockerfile "$BASE_SRC"/bootstrap "$BASE_SRC"/lambda-entrypoint.sh "$BASE_SRC"/requirements.txt "$CONTEXT"/
  # The Runtime Interface Emulator ships inside the aws-sam-cli wheel: no separate download.
  install -m 755 "$RIE" "$CONTEXT/aws-lambda-rie"
  "$PY" -m pip download --quiet --disable-pip-version-check "${WHEEL_FLAGS[@]}" \
    -d "$CONTEXT/wheels" -r "$BASE_SRC/requirements.txt" >"$SAM_LOCAL_LOGS/base-wheels.log" 2>&1 \
    || { tail -20 "$SAM_LOCAL_LOGS/base-wheels.log" >&2; return 1; }
}
build_image() {
  # --network none: the recipe must not need the network once the wheels are in the context.
  docker build --quiet --network none --label "dq.sam-local.recipe=$RECIPE" \
    -t "$LAMBDA_BASE_TAG" -t "$LAMBDA_ZIP_TAG" "$CONTEXT" >"$SAM_LOCAL_LOGS/base-build.log" 2>&1 \
    || { tail -30 "$SAM_LOCAL_LOGS/base-build.log" >&2; return 1; }
  rm -rf "$CONTEXT"
}

if [ -z "${FORCE_ROOTFS:-}" ] && docker image inspect "$ROOTFS_TAG" >/dev/null 2>&1; then
  echo "[sam-local] reusing rootfs image $ROOTFS_TAG" >&2
else
  step "debootstrap bookworm rootfs" debootstrap_rootfs
  step "docker import rootfs" import_rootfs
fi
step "base image: wheels + RIE context" prepare_context
step "base image: docker build" build_image
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'lambda/python|debian-bookworm' >&2
