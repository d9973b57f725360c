#!/bin/sh
# vLLM's compile cache kept on the shared NFS volume, without ever letting two pods write the
# same files: each pod compiles into its own local VLLM_CACHE_ROOT (an emptyDir) and publishes
# a complete copy under a name no other pod uses, with one atomic rename.
#
# Usage: compile-cache.sh seed    SHARE_KEY_DIR LOCAL_DIR
#        compile-cache.sh publish SHARE_KEY_DIR LOCAL_DIR PORT [INTERVAL_SECONDS] [KEEP]
#
# SHARE_KEY_DIR holds generations gen-<epoch>-<pod>/, each complete before it gets that name
# (copied to .tmp-<pod>/, then renamed: rename(2) of a directory is atomic, also on NFS).
# * seed (init container): copy the newest generation into LOCAL_DIR, then stamp
#   LOCAL_DIR/.vllm-doks-seeded. Never fails the pod: without a cache vLLM compiles cold.
# * publish (native sidecar): wait until vLLM answers /health (compilation done), then, if vLLM
#   wrote any file newer than the stamp (a cold compile, or a new hash of its own, e.g. after
#   an image or flag change), publish LOCAL_DIR as a new generation and keep the KEEP newest.
#   Then idle, so the sidecar stays up with the pod.

mode="$1"
share="$2"
local_dir="$3"
me="$(hostname 2>/dev/null || echo pod)-$$"
stamp="${local_dir}/.vllm-doks-seeded"

log() { echo "compile-cache: $*"; }
newest() { ls -1d "${share}"/gen-* 2>/dev/null | sort | tail -n 1; }

case "$mode" in
seed)
  mkdir -p "$local_dir" || exit 0
  gen=$(newest)
  if [ -n "$gen" ] && [ -f "${gen}/.vllm-doks-complete" ]; then
    if cp -R "${gen}/." "${local_dir}/" 2>/dev/null; then
      log "seeded ${local_dir} from ${gen} ($(find "$local_dir" -type f | wc -l) files)"
    else
      # A generation pruned while we copied it: start clean rather than half-seeded.
      log "could not copy ${gen}; compiling without the cache"
      rm -rf "${local_dir:?}"/* 2>/dev/null
    fi
  else
    log "no cache in ${share} yet; this pod compiles cold and publishes the result"
  fi
  rm -f "${local_dir}/.vllm-doks-complete"
  # cp gave the copied files new mtimes; the stamp comes after them, so only what vLLM
  # writes from here on counts as new.
  sleep 1
  date +%s >"$stamp"
  exit 0
  ;;
publish)
  port="$4"
  interval="${5:-10}"
  keep="${6:-2}"
  until curl -fsS --max-time 5 "http://127.0.0.1:${port}/health" >/dev/null 2>&1; do
    sleep "$interval"
  done
  fresh=$(find "$local_dir" -type f -newer "$stamp" ! -name '.vllm-doks-*' 2>/dev/null | head -n 1)
  if [ -z "$fresh" ]; then
    log "vLLM compiled nothing new (cache hit); nothing to publish"
  else
    tmp="${share}/.tmp-${me}"
    gen="${share}/gen-$(date +%s)-${me}"
    if mkdir -p "$share" && rm -rf "$tmp" && mkdir "$tmp" &&
      cp -R "${local_dir}/." "${tmp}/" && rm -f "${tmp}/.vllm-doks-seeded" &&
      date -u +%Y-%m-%dT%H:%M:%SZ >"${tmp}/.vllm-doks-complete" && mv "$tmp" "$gen"; then
      log "published ${gen} ($(find "$gen" -type f | wc -l) files)"
      # Keep the newest generations only; older ones are superseded.
      ls -1d "${share}"/gen-* 2>/dev/null | sort | head -n "-${keep}" | while read -r old; do
        rm -rf "$old"
      done
    else
      log "could not publish to ${share}; the next pod compiles cold again"
      rm -rf "$tmp"
    fi
  fi
  # A native sidecar must keep running while the pod does.
  while :; do sleep 3600; done
  ;;
*)
  echo "usage: compile-cache.sh seed|publish SHARE_KEY_DIR LOCAL_DIR [PORT] [INTERVAL] [KEEP]" >&2
  exit 64
  ;;
esac
