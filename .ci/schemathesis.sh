#!/usr/bin/env bash
# Fuzzes the running service against openapi.yaml: no server errors, no schema violations.
# Usage: .ci/schemathesis.sh PATH-TO-KOPILKA-BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
venv=target/ci-venv
[ -x "$venv/bin/schemathesis" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'schemathesis==4.*'; }

work=$(mktemp -d)
port=18080
export DATABASE_URL="$work/kopilka.db" KOPILKA__HTTP__PORT=$port KOPILKA__STRIPE__WEBHOOK_SECRETS=whsec_schemathesis \
  KOPILKA__STRIPE__CONNECT_WEBHOOK_SECRETS=whsec_schemathesis_connect \
  KOPILKA__EMAIL__FOLDER="$work/mail" KOPILKA__STRIPE__SYNC_INTERVAL_SECONDS=0
# Purchases go to localstripe when it runs (CI starts it); without it they answer 503, which
# schemathesis would count as a server error.
if [ -n "${TEST_LOCALSTRIPE_URL:-}" ]; then
  # localstripe speaks an old API version (see tests/api/billing_helpers.rs).
  export KOPILKA__STRIPE__SECRET_KEY=sk_test_schemathesis KOPILKA__STRIPE__API_BASE="$TEST_LOCALSTRIPE_URL/" \
    KOPILKA__STRIPE__API_VERSION=2020-08-27
fi
"$bin" serve >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; cp "$work/serve.log" target/schemathesis-serve.log; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
admin=$("$bin" dev-token --sub schemathesis-admin --role admin)
export KOPILKA_ADMIN_TOKEN=$admin
KOPILKA_SERVICE_KEY=$(curl -sf -XPOST "http://127.0.0.1:$port/v1/admin/service-credentials" \
  -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d '{"name":"schemathesis"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
export KOPILKA_SERVICE_KEY

# positive_data_acceptance is left out: valid-looking data may name a price or entitlement that
# does not exist, which the service rightly refuses with 422.
"$venv/bin/schemathesis" --config-file .ci/schemathesis.toml run openapi.yaml --url "http://127.0.0.1:$port" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples 30 --workers 2 --seed 1
if grep -q "panicked" "$work/serve.log"; then
  echo "the service panicked during the run:"; grep -A5 panicked "$work/serve.log"; exit 1
fi
