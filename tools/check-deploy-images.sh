#!/usr/bin/env bash
# check-deploy-images.sh [BUILD_DIR]: a deploy build (`make build`) must be built on AWS's own Lambda base image,
# never on the local stand-in (tools/sam-local/build-base-image.sh). The stand-in carries the label
# dq.sam-local.recipe and every image built FROM it inherits that label, so:
#   - without BUILD_DIR (before `sam build`): no image named under public.ecr.aws/ carries the label; an older
#     recipe tagged the stand-in public.ecr.aws/lambda/python:3.11, and a `FROM` of that name would build on it;
#   - with BUILD_DIR (after `sam build`): no image that BUILD_DIR's templates name (ImageUri) carries it, so
#     `sam deploy` cannot push an image built on the stand-in.
# Without Docker there is no image to check (and `sam build` of the image functions fails on its own).
set -euo pipefail
LABEL=dq.sam-local.recipe
build_dir="${1:-}"

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "[deploy-images] no Docker engine: nothing to check" >&2
  exit 0
fi

label_of() { docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

bad=()
if [ -z "$build_dir" ]; then
  while read -r ref; do
    [ -n "$ref" ] && bad+=("$ref")
  done < <(docker image ls --filter "label=$LABEL" --format '{{.Repository}}:{{.Tag}}' | grep -E '^public\.ecr\.aws/' || true)
  if [ "${#bad[@]}" -gt 0 ]; then
    printf '[deploy-images] the local stand-in carries a public image name: %s\n' "${bad[@]}" >&2
    echo "[deploy-images] a deploy build would build on it. Remove it: tools/sam-local/build-base-image.sh" \
      "(untags these names), or docker rmi ${bad[*]}" >&2
    exit 1
  fi
  echo "[deploy-images] no stand-in under a public image name" >&2
  exit 0
fi

mapfile -t images < <(find "$build_dir" -name template.yaml -exec grep -hE '^\s*ImageUri:' {} + \
                        | sed -E 's/^\s*ImageUri:\s*//; s/^["'\'']//; s/["'\'']$//' | sort -u)
for image in "${images[@]}"; do
  if [ -n "$(label_of "$image")" ]; then bad+=("$image"); fi
done
if [ "${#bad[@]}" -gt 0 ]; then
  printf '[deploy-images] %s was built on the local stand-in base image: do not deploy it\n' "${bad[@]}" >&2
  echo "[deploy-images] rebuild with the public base image (make build on a machine that can pull it)" >&2
  exit 1
fi
echo "[deploy-images] ${#images[@]} built image(s), none on the local stand-in: ${images[*]:-none}" >&2
