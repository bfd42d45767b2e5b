# Sourced by every tools/sam-local script: one place for the settings that keep `sam` and Docker local.
# shellcheck shell=bash
SAM_LOCAL_TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SAM_LOCAL_TOOLS/../.." && pwd)"
export SAM_LOCAL_TOOLS REPO_ROOT

# Scratch space (gitignored): debootstrap rootfs, base-image build context, logs.
export SAM_LOCAL_WORK="${SAM_LOCAL_WORK:-$REPO_ROOT/build/sam-local}"
export SAM_LOCAL_LOGS="${SAM_LOCAL_LOGS:-$SAM_LOCAL_WORK/logs}"
mkdir -p "$SAM_LOCAL_LOGS"

# SAM CLI lives in its own venv (`make tools`): its pins clash with the project's.
export SAM_VENV="${SAM_VENV:-$REPO_ROOT/.venv-sam}"
export PATH="$SAM_VENV/bin:$PATH"

# The Lambda Python every function targets (tools/lambda_platform.py, checked against the templates).
LAMBDA_PYTHON="$(python3 "$REPO_ROOT/tools/lambda_platform.py" python)"
export LAMBDA_PYTHON
# The local stand-in for public.ecr.aws/lambda/python:$LAMBDA_PYTHON and the rootfs it is built on. Their names
# are never a public registry's: `localhost/` is a registry no pull or push leaves the machine for, and the
# templates and a deploy build (`make build`, plain `sam build`) only ever name the public image, so they can
# never resolve to the stand-in. `sam.sh` points the local build at it (generated templates, --invoke-image).
export LAMBDA_LOCAL_IMAGE="localhost/dq-lambda-python:$LAMBDA_PYTHON"
export DEBIAN_SUITE=trixie   # Debian 13: python3 is 3.13 (bookworm's is 3.11)
export ROOTFS_TAG="localhost/dq-debian-$DEBIAN_SUITE-rootfs:$LAMBDA_PYTHON"
# Label of the stand-in; images built FROM it inherit it, which is how tools/check-deploy-images.sh tells them.
export STAND_IN_LABEL="dq.sam-local.recipe"
# Where the local build goes: never .aws-sam/build, which `sam deploy` reads.
export SAM_LOCAL_BUILD="${SAM_LOCAL_BUILD:-$SAM_LOCAL_WORK/sam-build}"
export SAM_LOCAL_CACHE="${SAM_LOCAL_CACHE:-$SAM_LOCAL_WORK/sam-cache}"

# Local traffic only: no telemetry, no metadata-service probes, no credentials (SAM would call STS),
# and never try to pull an image from a registry this machine cannot reach.
export SAM_CLI_TELEMETRY=0
export AWS_EC2_METADATA_DISABLED=true
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_REGION="${AWS_REGION:-us-east-1}"
export SAM_SKIP_PULL_IMAGE=1
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE

# step LABEL CMD...: run CMD and print its wall time on stderr (the numbers in docs/sam-local.md).
step() {
  local label=$1 t0 rc=0
  shift
  t0=$(date +%s.%N)
  "$@" || rc=$?
  printf "[sam-local] %-36s %7.1f s%s\n" "$label" "$(awk -v a="$t0" -v b="$(date +%s.%N)" "BEGIN{print b-a}")" \
    "$([ "$rc" -eq 0 ] || echo "  (FAILED rc=$rc)")" >&2
  return "$rc"
}
