#!/usr/bin/env bash
# `make demo`: start the stack, migrate, load a catalog, create the staff user,
# then run the Procfile (API, Celery worker and beat, payment simulator) under
# honcho until Ctrl-C.
# Services that were already running before the demo are left running on exit;
# the ones the demo started are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
API_PORT="${API_PORT:-28000}"
DEMO_PRODUCTS="${DEMO_PRODUCTS:-2000}"
DEMO_ADMIN_USER="${DEMO_ADMIN_USER:-admin}"
DEMO_ADMIN_PASSWORD="${DEMO_ADMIN_PASSWORD:-admin}"
export API_PORT LOG_FORMAT="${LOG_FORMAT:-console}"

# Remember which services were down, so Ctrl-C stops only what this demo started.
started_here=()
for service in postgres redis kafka opensearch; do
    if ! bash compose/native/stack.sh status "$service" >/dev/null 2>&1; then
        started_here+=("$service")
    fi
done

stop_stack() {
    if ((${#started_here[@]})); then
        echo "demo: stopping the services it started: ${started_here[*]}"
        bash compose/native/stack.sh down "${started_here[@]}" || true
    fi
}
trap stop_stack EXIT

bash compose/native/stack.sh up

echo "demo: applying migrations"
"$BIN/python" manage.py migrate --no-input
"$BIN/python" manage.py migrate --no-input --database analytics

if [ -n "${CATALOG:-}" ]; then
    # CATALOG may name several files separated by spaces.
    read -r -a catalog_files <<<"$CATALOG"
    echo "demo: importing ${catalog_files[*]}"
    "$BIN/python" manage.py import_shopify_csv "${catalog_files[@]}"
else
    echo "demo: no CATALOG given, seeding $DEMO_PRODUCTS synthetic products"
    "$BIN/python" manage.py seed_catalog --products "$DEMO_PRODUCTS"
fi

# Build the search index from PostgreSQL once; the search-indexer consumer keeps it current.
echo "demo: building the search index"
"$BIN/python" manage.py reindex_catalog

echo "demo: ensuring staff user '$DEMO_ADMIN_USER'"
DEMO_ADMIN_USER="$DEMO_ADMIN_USER" DEMO_ADMIN_PASSWORD="$DEMO_ADMIN_PASSWORD" \
    "$BIN/python" manage.py ensure_demo_admin

echo
echo "demo: storefront API  http://127.0.0.1:$API_PORT/api/v1/products/"
echo "demo: admin           http://127.0.0.1:$API_PORT/admin/  (user '$DEMO_ADMIN_USER')"
echo "demo: readiness       http://127.0.0.1:$API_PORT/readyz"
echo "demo: press Ctrl-C to stop"
echo

# honcho stops every process of the Procfile when it receives Ctrl-C.
PATH="$PWD/$BIN:$PATH" "$BIN/honcho" start -f Procfile || true
