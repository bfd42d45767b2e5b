#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`: install Debian's docker.io (+ debootstrap, which the
# base image needs) when missing, then start dockerd in the background when it is not running.
# A docker *client* alone (some images ship one in /usr/local/bin) is not enough: we look for dockerd.
set -euo pipefail
source "$(dirname "$0")/env.sh"

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v curl >/dev/null || need_apt+=(curl)

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to apt-get install ${need_apt[*]} (or install them yourself)" >&2
    return 1
  fi
  apt-get update -qq >"$SAM_LOCAL_LOGS/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" \
    >>"$SAM_LOCAL_LOGS/apt.log" 2>&1 || { tail -20 "$SAM_LOCAL_LOGS/apt.log" >&2; return 1; }
}

start_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "Docker is not running and I am not root: start it (e.g. 'sudo systemctl start docker')" >&2
    return 1
  fi
  # setsid: dockerd must outlive this script and the test session that started it.
  setsid dockerd >"$SAM_LOCAL_LOGS/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 90); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "dockerd did not answer 'docker info' within 90 s; last lines of $SAM_LOCAL_LOGS/dockerd.log:" >&2
  tail -20 "$SAM_LOCAL_LOGS/dockerd.log" >&2
  return 1
}

if [ "${#need_apt[@]}" -gt 0 ]; then
  step "apt-get install ${need_apt[*]}" apt_install
fi
step "dockerd up (docker info)" start_dockerd
