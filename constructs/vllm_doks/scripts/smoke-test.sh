#!/bin/sh
# Smoke test after apply: send one authenticated chat completion through the Gateway and
# report its latency. Retries while the endpoint is coming up (nothing listening yet, route not
# programmed, no ready backend), fails at once when the API key or the request is refused, and
# gives up at a deadline.
#
# Usage: smoke-test.sh URL MODEL DEADLINE_SECONDS [INTERVAL_SECONDS] [API_KEY_FILE]
#                      [REQUEST_TIMEOUT_SECONDS] [MAX_TOKENS]
#   URL: the chat completions endpoint, e.g. http://gw.ns.svc:80/v1/chat/completions.
#   API_KEY_FILE: file holding the key sent as "Authorization: Bearer"; empty: no header.
#
# Exit 0 with "smoke-test: OK ..." (and the same line in /dev/termination-log, which
# `kubectl get pod -o jsonpath='{..terminationMessage}'` shows); 1 when refused or out of time.
# POSIX sh + curl only (both are in the vLLM image). The key never appears in argv: curl reads
# the header from a file (-H @file, curl >= 7.55) in a private temporary directory.

url="$1"
model="$2"
deadline="${3:-600}"
interval="${4:-10}"
key_file="${5:-}"
request_timeout="${6:-120}"
max_tokens="${7:-16}"
# A black-holed address (a Service without endpoints behind a dropping policy) costs this much
# per attempt, not the whole request timeout.
connect_timeout=10
start=$(date +%s)

log() { echo "smoke-test: $*"; }
report() {
  log "$*"
  { echo "$*" >/dev/termination-log; } 2>/dev/null || true
}

if [ -z "$url" ] || [ -z "$model" ]; then
  echo "usage: smoke-test.sh URL MODEL DEADLINE_SECONDS [INTERVAL] [API_KEY_FILE]" >&2
  exit 64
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/smoke.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
umask 077
: >"${work}/headers"
if [ -n "$key_file" ]; then
  if [ ! -r "$key_file" ]; then
    report "FAILED: API key file ${key_file} is not readable"
    exit 1
  fi
  printf 'Authorization: Bearer %s\n' "$(cat "$key_file")" >"${work}/headers"
fi
# Model names are [A-Za-z0-9._/-] (checked at synth time), so no JSON escaping is needed.
printf '{"model":"%s","messages":[{"role":"user","content":"Reply with the single word: ready"}],"max_tokens":%s,"temperature":0}' \
  "$model" "$max_tokens" >"${work}/request"

attempt=0
while :; do
  attempt=$((attempt + 1))
  now=$(($(date +%s) - start))
  left=$((deadline - now))
  if [ "$left" -le 0 ]; then
    report "FAILED: no successful completion from ${url} within ${deadline}s (${attempt} attempts; last: ${last:-none})"
    exit 1
  fi
  timeout=$request_timeout
  [ "$timeout" -gt "$left" ] && timeout=$left
  result=$(curl -sS -o "${work}/response" -w '%{http_code} %{time_total}' --max-time "$timeout" \
    --connect-timeout "$connect_timeout" \
    -H "Content-Type: application/json" -H "@${work}/headers" --data-binary "@${work}/request" \
    "$url" 2>"${work}/error")
  code=${result%% *}
  seconds=${result#* }
  case "$code" in
    2??)
      if grep -q '"choices"' "${work}/response"; then
        report "OK: HTTP ${code} in ${seconds}s for one chat completion of ${model} via ${url} (attempt ${attempt}, $(($(date +%s) - start))s after start)"
        head -c 300 "${work}/response"
        echo
        exit 0
      fi
      last="HTTP ${code} without choices: $(head -c 200 "${work}/response")"
      ;;
    401 | 403)
      report "FAILED: HTTP ${code}: the endpoint refused the API key ($(head -c 200 "${work}/response"))"
      exit 1
      ;;
    400 | 422)
      report "FAILED: HTTP ${code}: the request was refused ($(head -c 300 "${work}/response"))"
      exit 1
      ;;
    000 | "")
      last="no HTTP answer: $(head -c 200 "${work}/error")"
      ;;
    *)
      last="HTTP ${code}: $(head -c 200 "${work}/response")"
      ;;
  esac
  log "attempt ${attempt}: ${last}; retrying in ${interval}s"
  left=$((deadline - $(($(date +%s) - start))))
  [ "$left" -gt 0 ] && sleep "$([ "$interval" -lt "$left" ] && echo "$interval" || echo "$left")"
done
