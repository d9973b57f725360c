#!/bin/sh
# Download a Hugging Face model to the shared NFS volume, once, and verify it.
#
# Usage: download-model.sh MODEL_ID MODEL_DIR MAX_WORKERS STALE_SECONDS HEARTBEAT_SECONDS
#                          POLL_SECONDS REVISION FETCH_PROGRAM
#   REVISION: a commit to pin (empty: the default branch). FETCH_PROGRAM: the text of
#   fetch_model.py, run with python3 -c: it downloads that commit and checks every file
#   against the hub's hashes (exit 2 on a mismatch, after deleting the bad files).
#
# Safe to run any number of times, from any number of pods at once:
# * MODEL_DIR/.vllm-doks-verified is written last (atomically) and only after every file
#   matched the hub's hashes, so its presence means the directory is complete and verified;
#   if it exists we are done before touching the network. A failed verification exits
#   non-zero (a failed Job attempt) and writes no marker.
# * Only one downloader works on a directory at a time: the holder of MODEL_DIR/.vllm-doks-lock
#   (mkdir is atomic, also on NFS). The holder bumps a heartbeat file in the lock; a waiter
#   that sees the heartbeat unchanged for STALE_SECONDS (measured on its own clock, so node
#   clock skew does not matter) treats the holder as dead and breaks the lock. Should two
#   downloaders ever overlap anyway, snapshot_download resumes and skips finished files, and
#   the marker still comes last: the worst case is duplicate traffic, not a broken model.
set -eu

model_id="$1"
model_dir="$2"
max_workers="${3:-4}"
stale_after="${4:-120}"
heartbeat_every="${5:-15}"
poll="${6:-10}"
revision="${7:-}"
fetch_program="${8:-}"
marker="${model_dir}/.vllm-doks-verified"
lock="${model_dir}/.vllm-doks-lock"
me="$(hostname 2>/dev/null || echo unknown)-$$"

log() { echo "download-model: $*"; }

if [ -f "$marker" ]; then
  log "${model_id} is already complete in ${model_dir}; nothing to do"
  exit 0
fi
mkdir -p "$model_dir"

last_beat=""
unchanged_since=$(date +%s)
while ! mkdir "$lock" 2>/dev/null; do
  if [ -f "$marker" ]; then
    log "${model_id} was completed by another downloader"
    exit 0
  fi
  beat=$(cat "${lock}/heartbeat" 2>/dev/null || true)
  now=$(date +%s)
  if [ "$beat" != "$last_beat" ]; then
    last_beat="$beat"
    unchanged_since="$now"
  elif [ $((now - unchanged_since)) -ge "$stale_after" ]; then
    owner=$(cat "${lock}/owner" 2>/dev/null || echo unknown)
    log "lock held by ${owner} shows no heartbeat for ${stale_after}s; breaking it"
    # Rename first: of several waiters that judge the same lock stale, only one can move it.
    if mv "$lock" "${lock}.stale.${me}" 2>/dev/null; then
      rm -rf "${lock}.stale.${me}"
    fi
    last_beat=""
    unchanged_since=$(date +%s)
    continue
  fi
  log "another downloader holds ${lock}; waiting"
  sleep "$poll"
done

echo "$me" >"${lock}/owner"
echo 0 >"${lock}/heartbeat"
# The heartbeat stops by itself once this shell is gone, even after a SIGKILL.
(
  i=0
  while kill -0 "$$" 2>/dev/null; do
    i=$((i + 1))
    echo "$i" >"${lock}/heartbeat" 2>/dev/null || exit 0
    sleep "$heartbeat_every"
  done
) </dev/null >/dev/null 2>&1 &
heartbeat_pid=$!

release() {
  kill "$heartbeat_pid" 2>/dev/null || true
  if [ "$(cat "${lock}/owner" 2>/dev/null || true)" = "$me" ]; then
    rm -rf "$lock"
  fi
}
trap release EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Someone may have finished between our first look and taking the lock.
if [ -f "$marker" ]; then
  log "${model_id} was completed by another downloader"
  exit 0
fi

log "downloading ${model_id}${revision:+ at ${revision}} to ${model_dir} with ${max_workers} workers"
rc=0
MODEL_ID="$model_id" MODEL_DIR="$model_dir" MAX_WORKERS="$max_workers" \
  MODEL_REVISION="$revision" python3 -c "$fetch_program" || rc=$?
if [ "$rc" -ne 0 ]; then
  log "download or verification of ${model_id} failed (exit ${rc}); no marker written"
  exit "$rc"
fi
date -u +%Y-%m-%dT%H:%M:%SZ >"${marker}.tmp.${me}"
mv "${marker}.tmp.${me}" "$marker"
log "${model_id} is complete and verified in ${model_dir}"
