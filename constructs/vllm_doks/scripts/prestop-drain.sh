#!/bin/sh
# preStop hook for a vLLM container: hold SIGTERM back until vLLM reports no running and no
# waiting requests, but never past a deadline, so the pod always terminates in its grace period.
#
# Usage: prestop-drain.sh PORT DEADLINE_SECONDS [SETTLE_SECONDS] [INTERVAL_SECONDS]
#   DEADLINE_SECONDS counts from the start of the hook (settle time included); after it the
#   hook exits 0 whatever the state, and vLLM's own --shutdown-timeout takes over.
#   SETTLE_SECONDS is an initial pause so the Service endpoints and the Gateway drop this pod
#   before we start counting; requests routed here in that window are then counted too.
#
# POSIX sh + curl + awk only: it runs inside the vLLM image, which has no bash guarantees.

port="${1:-8000}"
deadline="${2:-50}"
settle="${3:-5}"
interval="${4:-2}"
url="http://127.0.0.1:${port}/metrics"
start=$(date +%s)

log() { echo "prestop-drain: $*"; }
elapsed() { echo $(($(date +%s) - start)); }
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }

# Prometheus text -> "idle", "busy <running> <waiting>" or "unknown". Lines may carry label sets
# (vllm:num_requests_running{model_name="x"} 0.0) and timestamps; one line per label set, so
# sum them. A missing metric or a non-numeric value is "unknown": never mistake it for idle.
summarize() {
  awk '
    /^vllm:num_requests_(running|waiting)[{ \t]/ {
      line = $0
      sub(/[{].*[}]/, "", line)
      n = split(line, f, /[ \t]+/)
      if (n < 2 || f[2] !~ /^[+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$/) { bad = 1; next }
      if (f[1] == "vllm:num_requests_running") { running += f[2]; seen_r = 1 }
      else if (f[1] == "vllm:num_requests_waiting") { waiting += f[2]; seen_w = 1 }
    }
    END {
      if (bad || !seen_r || !seen_w) print "unknown"
      else if (running == 0 && waiting == 0) print "idle"
      else printf "busy %g %g\n", running, waiting
    }'
}

pause=$(min "$settle" "$deadline")
[ "$pause" -gt 0 ] && sleep "$pause"

while :; do
  now=$(elapsed)
  if [ "$now" -ge "$deadline" ]; then
    log "deadline of ${deadline}s reached; letting termination proceed"
    exit 0
  fi
  # curl may not outlive the deadline either.
  max_time=$(min 5 $((deadline - now)))
  body=$(curl -fsS --max-time "$max_time" "$url" 2>/dev/null)
  rc=$?
  if [ "$rc" -eq 7 ]; then
    # Connection refused: nothing listens, so nothing can be in flight.
    log "nothing listens on port ${port}; nothing to drain"
    exit 0
  fi
  if [ "$rc" -eq 0 ]; then
    state=$(printf '%s\n' "$body" | summarize)
    case "$state" in
      idle)
        log "no requests running or waiting"
        exit 0
        ;;
      busy*) log "draining: running/waiting = ${state#busy }" ;;
      *) log "metrics do not report vllm:num_requests_running/waiting; retrying" ;;
    esac
  else
    log "metrics endpoint not answering (curl exit ${rc}); retrying"
  fi
  left=$((deadline - $(elapsed)))
  [ "$left" -gt 0 ] && sleep "$(min "$interval" "$left")"
done
