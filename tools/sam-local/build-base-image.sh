#!/usr/bin/env bash
# Build the local stand-in for the Lambda Python base image as $LAMBDA_LOCAL_IMAGE (localhost/dq-lambda-python:
# <version>, env.sh). It never carries the public image's name: `sam.sh` points local builds and `sam local` at
# it, and a deploy build can never resolve `FROM public.ecr.aws/lambda/python:...` to it. Images an older recipe
# tagged with public names (public.ecr.aws/lambda/python:3.11 and -x86_64, and anything else of ours under
# public.ecr.aws) are untagged here.
# Skipped when an image built from the same recipe exists (label dq.sam-local.recipe = hash of the inputs);
# the debootstrap rootfs image is reused whenever present (FORCE_ROOTFS=1 rebuilds it).
set -euo pipefail
source "$(dirname "$0")/env.sh"

BASE_SRC="$SAM_LOCAL_TOOLS/lambda-base"
CONTEXT="$SAM_LOCAL_WORK/base-context"
ROOTFS="$SAM_LOCAL_WORK/rootfs"
PY="${PYTHON:-$SAM_VENV/bin/python}"
RIE="$("$SAM_VENV/bin/python" -c 'import pathlib, samcli; print(pathlib.Path(samcli.__file__).parent / "local/rapid/aws-lambda-rie-x86_64")')"
read -ra WHEEL_FLAGS <<<"$("$PY" "$REPO_ROOT/tools/lambda_platform.py" pip-flags)"

# Older recipes tagged the stand-in with the public base image's names, so a deploy build on this machine
# would have built on it. Untag every such name (the image itself goes once no tag or child uses it).
remove_public_stand_ins() {
  local ref
  docker image ls --filter "label=$STAND_IN_LABEL" --format '{{.Repository}}:{{.Tag}}' \
    | { grep -E '^public\.ecr\.aws/' || true; } | sort -u | while read -r ref; do
      echo "[sam-local] removing $ref: a stand-in built by an older recipe under the public image's name" >&2
      docker rmi "$ref" >/dev/null
    done
  # The older recipe's rootfs (a Docker Hub-style name), unused by this one.
  if docker image inspect local/debian-bookworm-python:3.11 >/dev/null 2>&1; then
    docker rmi local/debian-bookworm-python:3.11 >/dev/null || true
  fi
}
remove_public_stand_ins

recipe_hash() {
  { sha256sum "$BASE_SRC"/Dockerfile "$BASE_SRC"/bootstrap "$BASE_SRC"/lambda-entrypoint.sh \
      "$BASE_SRC"/requirements.txt "$RIE" | awk '{print $1}'; echo "$ROOTFS_TAG ${WHEEL_FLAGS[*]}"; } \
    | sha256sum | cut -c1-16
}
RECIPE="$(recipe_hash)"

built_recipe() {  # prints the recipe label of an existing image, nothing when the image is missing
  docker image inspect -f "{{ index .Config.Labels \"$STAND_IN_LABEL\" }}" "$1" 2>/dev/null || true
}

if [ "$(built_recipe "$LAMBDA_LOCAL_IMAGE")" = "$RECIPE" ]; then
  echo "[sam-local] base image $LAMBDA_LOCAL_IMAGE is up to date (recipe $RECIPE)" >&2
  exit 0
fi

debootstrap_rootfs() {
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase --include=python3-venv,ca-certificates \
    "$DEBIAN_SUITE" "$ROOTFS" http://deb.debian.org/debian >"$SAM_LOCAL_LOGS/debootstrap.log" 2>&1 \
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
  docker build --quiet --network none --label "$STAND_IN_LABEL=$RECIPE" \
    --build-arg "ROOTFS=$ROOTFS_TAG" --build-arg "PYTHON_VERSION=$LAMBDA_PYTHON" \
    -t "$LAMBDA_LOCAL_IMAGE" "$CONTEXT" >"$SAM_LOCAL_LOGS/base-build.log" 2>&1 \
    || { tail -30 "$SAM_LOCAL_LOGS/base-build.log" >&2; return 1; }
  rm -rf "$CONTEXT"
}
# SAM CLI derives `<repository>:rapid-x86_64` from an --invoke-image for zip functions without layers and
# reuses it while it exists: drop it so the next `sam local` rebuilds it on the new stand-in.
remove_rapid_images() {
  local ref
  docker image ls --format '{{.Repository}}:{{.Tag}}' "${LAMBDA_LOCAL_IMAGE%:*}" | { grep ':rapid-' || true; } \
    | while read -r ref; do docker rmi "$ref" >/dev/null || true; done
}

if [ -z "${FORCE_ROOTFS:-}" ] && docker image inspect "$ROOTFS_TAG" >/dev/null 2>&1; then
  echo "[sam-local] reusing rootfs image $ROOTFS_TAG" >&2
else
  step "debootstrap $DEBIAN_SUITE rootfs" debootstrap_rootfs
  step "docker import rootfs" import_rootfs
fi
step "base image: wheels + RIE context" prepare_context
step "base image: docker build" build_image
remove_rapid_images
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^localhost/dq-" >&2
