#!/usr/bin/env bash
# A short Locust run against the full process set, then the consistency audit.
# CI runs it after the test suite, so a regression in any boundary under
# concurrent load fails the build. Expects the stack to be up (make stack-up).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
USERS="${USERS:-20}"
DURATION="${DURATION:-60s}"
export API_PORT="${API_PORT:-28000}" LOG_FORMAT=json
mkdir -p .loadtest

"$BIN/python" manage.py migrate --no-input
"$BIN/python" manage.py migrate --no-input --database analytics
"$BIN/python" manage.py seed_catalog --products "${LOADTEST_PRODUCTS:-300}"
"$BIN/python" manage.py reindex_catalog

echo "ci-loadtest: starting the Procfile processes (log: .loadtest/processes.log)"
PATH="$PWD/$BIN:$PATH" setsid "$BIN/honcho" start -f Procfile >.loadtest/processes.log 2>&1 &
honcho_pid=$!
stop_processes() {
    # setsid gave honcho its own process group, so this reaches every child.
    kill -TERM -- "-$honcho_pid" 2>/dev/null || true
    wait "$honcho_pid" 2>/dev/null || true
}
trap stop_processes EXIT

for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
curl -fsS "http://127.0.0.1:$API_PORT/healthz" >/dev/null || {
    echo "ci-loadtest: the API did not start; last lines of its log:" >&2
    tail -n 50 .loadtest/processes.log >&2
    exit 1
}

# Locust exits non-zero when any request failed. The audit below is the verdict
# on consistency, so the run's own status is reported but does not stop it.
"$BIN/locust" -f loadtest/locustfile.py --headless --users "$USERS" --spawn-rate 10 --run-time "$DURATION" \
    --host "http://127.0.0.1:$API_PORT" --csv .loadtest/run --html .loadtest/report.html --only-summary \
    || echo "ci-loadtest: locust reported failed requests (see .loadtest/run_failures.csv)"

"$BIN/python" manage.py audit_consistency --settle 120
