#!/usr/bin/env bash
# Makes the upgrade test's fixture: a database written by an older `neuronx` binary, dumped as
# SQL. Usage: scripts/upgrade-fixture.sh OLD_BINARY sqlite|postgres
#
# The binary makes a tenant, a team, a principal, a second key, a Twilio account (sealed with
# the fixture's keyring), a do-not-call entry and five opportunities (one paused), then stops.
# One opportunity's contact-index row is then deleted, as a `kill -9` between its commit and
# that write used to leave it. tests/upgrade.rs loads the dump and upgrades it.
set -euo pipefail
bin=$1 backend=$2
cd "$(dirname "$0")/.."
out=tests/fixtures/upgrade
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill %1 2>/dev/null || true; rm -rf "$work"' EXIT
export NEURONX_SECRET_KEYS=$(cat "$out/keyring")
export NEURONX_OUTBOUND_ALLOW=127.0.0.0/8
export NEURONX_LOG=warn
case $backend in
  sqlite) export NEURONX_DATABASE_URL="sqlite://$work/old.db" ;;
  postgres)
    admin=${NEURONX_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    psql "$admin" -qc "DROP DATABASE IF EXISTS nx_upgrade_fixture" -c "CREATE DATABASE nx_upgrade_fixture"
    export NEURONX_DATABASE_URL="${admin%/*}/nx_upgrade_fixture" ;;
esac
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export NEURONX_LISTEN=127.0.0.1:$port NEURONX_PUBLIC_URL=http://127.0.0.1:$port

"$bin" migrate >/dev/null
created=$("$bin" tenant create fixture)
tenant=$(jq -r .tenant_id <<<"$created")
key=$(jq -r .api_key <<<"$created")
"$bin" tenant team create --tenant "$tenant" closers >/dev/null
"$bin" tenant principal create --tenant "$tenant" --name ana --role operator --team closers >/dev/null
"$bin" tenant key create --tenant "$tenant" --name reports --role viewer >/dev/null

"$bin" serve &
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
api() { curl -sf -X "$1" "http://127.0.0.1:$port$2" -H "Authorization: Bearer $key" \
  -H 'content-type: application/json' ${3:+-d "$3"}; }
# A carrier nobody answers: the dials fail and are recorded, which the dump keeps too.
api PUT /v1/channels/twilio '{"account_sid":"AC00000000000000000000000000000001","auth_token":"fixture-token","from_number":"+14155550000","base_url":"http://127.0.0.1:9"}' >/dev/null
api POST /v1/dnc '{"phone":"+14155550199"}' >/dev/null
for i in 1 2 3 4 5; do
  api POST /v1/opportunities "{\"external_id\":\"lead-$i\",\"playbook\":\"demo\",\"team\":\"closers\",\"contact\":{\"name\":\"Lead $i\",\"phone\":\"+1415555010$i\",\"timezone\":\"America/New_York\",\"consent\":{\"voice\":true,\"sms\":true}}}" >/dev/null
done
id2=$(api GET '/v1/opportunities?limit=10' | jq -r '.items[] | select(.external_id=="lead-2") | .id')
api POST "/v1/opportunities/$id2/pause" '{"reason":"fixture"}' >/dev/null
kill -TERM %1; wait %1 || true

id5_sql="SELECT CAST(id AS TEXT) FROM actors WHERE kind = 'opportunity' AND state LIKE '%lead-5%'"
case $backend in
  sqlite)
    db=$work/old.db
    sqlite3 "$db" "DELETE FROM contact_index WHERE opportunity_id = ($id5_sql)"
    sqlite3 "$db" .dump > "$out/sqlite.sql" ;;
  postgres)
    url=$NEURONX_DATABASE_URL
    psql "$url" -qc "DELETE FROM contact_index WHERE opportunity_id = (SELECT id FROM actors WHERE kind = 'opportunity' AND state::text LIKE '%lead-5%')"
    # Without psql's meta-commands (`\restrict`): the test runs the dump through a driver.
    pg_dump --inserts --no-owner --no-privileges --no-comments "$url" | sed '/^\\/d' > "$out/postgres.sql"
    psql "$admin" -qc "DROP DATABASE nx_upgrade_fixture" ;;
esac
printf "%s\n" "$tenant" > "$out/$backend.tenant"
printf '%s\n' "$key" > "$out/$backend.key"
echo "fixture written: $out/$backend.sql (tenant $tenant)"
