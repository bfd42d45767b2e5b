#!/usr/bin/env bash
# SAM CLI on the local stand-in base image ($LAMBDA_LOCAL_IMAGE, built by build-base-image.sh), for machines
# that reach no container registry. The templates only name the public base image; this points local runs at
# the stand-in without tagging it with that name:
#   sam.sh build [ARGS]                    sam build of generated template copies (local_templates.py) whose
#                                          image functions get BASE_IMAGE=<stand-in>, into build/sam-local/
#                                          sam-build (never .aws-sam/build, which `sam deploy` reads)
#   sam.sh local invoke|start-api|start-lambda [ARGS]
#                                          sam local on that build; zip functions run on the stand-in
#                                          (--invoke-image Stack/Function=<stand-in> for each of them)
# Any other command is passed to sam unchanged.
set -euo pipefail
source "$(dirname "$0")/env.sh"
TEMPLATES=("$SAM_VENV/bin/python" "$SAM_LOCAL_TOOLS/local_templates.py")

case "${1:-}" in
  build)
    shift
    "${TEMPLATES[@]}" write --image "$LAMBDA_LOCAL_IMAGE" >/dev/null
    exec sam build --template "$REPO_ROOT/template.sam-local.yaml" \
      --build-dir "$SAM_LOCAL_BUILD" --cache-dir "$SAM_LOCAL_CACHE" "$@"
    ;;
  local)
    command="${2:?usage: sam.sh local invoke|start-api|start-lambda [ARGS]}"
    shift 2
    if [ ! -f "$SAM_LOCAL_BUILD/template.yaml" ]; then
      echo "no local build in ${SAM_LOCAL_BUILD#"$REPO_ROOT"/}: run tools/sam-local/sam.sh build first" >&2
      exit 2
    fi
    invoke_images=()
    while read -r spec; do
      invoke_images+=(--invoke-image "$spec")
    done < <("${TEMPLATES[@]}" invoke-images --image "$LAMBDA_LOCAL_IMAGE")
    exec sam local "$command" --template "$SAM_LOCAL_BUILD/template.yaml" "${invoke_images[@]}" "$@"
    ;;
  *)
    exec sam "$@"
    ;;
esac
