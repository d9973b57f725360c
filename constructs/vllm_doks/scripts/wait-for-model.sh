#!/bin/sh
# Init container: block the pod until the model-download Job has finished, so the vLLM
# container (and its startup probe's clock) only starts once the weights are complete.
# Without it, a plain `kubectl apply` starts vLLM on a half-written model directory and the
# pod crash-loops until the download ends.
#
# Usage: wait-for-model.sh MARKER_PATH [INTERVAL_SECONDS] [JOB_HINT]

marker="$1"
interval="${2:-10}"
hint="${3:-the model-download Job}"

if [ -z "$marker" ]; then
  echo "usage: wait-for-model.sh MARKER_PATH [INTERVAL_SECONDS] [JOB_HINT]" >&2
  exit 64
fi

while [ ! -f "$marker" ]; do
  echo "wait-for-model: ${marker} does not exist yet; waiting for ${hint} (next check in ${interval}s)"
  sleep "$interval"
done
echo "wait-for-model: model is complete (${marker} exists)"
