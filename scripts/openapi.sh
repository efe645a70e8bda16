#!/usr/bin/env bash
# The API document as integrators use it. Starts `neuronx serve` on a temporary database
# (scripts/temp-server.sh), reads its `/openapi.json`, and
#   1. validates it (openapi-spec-validator) and lints it (redocly, rules in redocly.yaml);
#   2. generates TypeScript types (openapi-typescript) and compiles a file that uses them
#      (tsc --strict): the stage enum, typed query parameters, typed answers;
#   3. generates a Python client (openapi-python-client, failing on any warning) and drives
#      create, get, pause, timeline and list through it (scripts/openapi_client_check.py).
# Any failure fails the script. The tools, at pinned versions, are installed once under the
# target folder (openapi-tools/) and reused; a re-run takes seconds after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

tools="$(pwd)/${CARGO_TARGET_DIR:-target}/openapi-tools"
py_packages="openapi-spec-validator==0.9.0 openapi-python-client==0.29.1"
npm_packages="@redocly/cli@2.77.0 openapi-typescript@7.13.0 typescript@5.9.3"
wanted="$py_packages $npm_packages"
if [ "$(cat "$tools/installed" 2>/dev/null)" != "$wanted" ]; then
  log "installing $wanted into $tools"
  rm -rf "$tools"
  mkdir -p "$tools"
  if ! python3 -m venv "$tools/venv" >/dev/null 2>&1; then
    rm -rf "$tools/venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$tools/venv"
  fi
  command -v npm >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  }
  # shellcheck disable=SC2086 # the lists are meant to split into packages
  "$tools/venv/bin/pip" install -q $py_packages
  echo '{"private": true}' >"$tools/package.json"
  # shellcheck disable=SC2086
  (cd "$tools" && npm install --no-audit --no-fund --silent $npm_packages)
  echo "$wanted" >"$tools/installed"
fi
bin="$tools/node_modules/.bin"

source scripts/temp-server.sh
work="$TEMP_DIR/openapi"
mkdir -p "$work/ts" "$work/py"
curl -fsS "$BASE/openapi.json" -o "$work/openapi.json"

log "openapi-spec-validator"
# Its error message repeats the whole document: the first lines say what is wrong.
"$tools/venv/bin/openapi-spec-validator" "$work/openapi.json" 2>&1 | cut -c1-600 >&2

log "redocly lint (redocly.yaml)"
# Redocly's telemetry and update notice stay off: the check must not depend on them. Its
# banner about Node.js versions is dropped from the output; its findings are kept.
lint=0
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$bin/redocly" lint --config redocly.yaml --format stylish "$work/openapi.json" \
  >"$work/lint.log" 2>&1 || lint=$?
grep -v -e '^\s*$' -e '[║╔╚]' "$work/lint.log" >&2 || true
[ "$lint" = 0 ] || exit "$lint"

log "TypeScript types (openapi-typescript, tsc --strict)"
# From the work folder: run in the repository it would lint again with redocly.yaml.
(cd "$work/ts" && "$bin/openapi-typescript" ../openapi.json -o api.d.ts >/dev/null 2>&1)
# Uses the generated types the way an integrator would; `@ts-expect-error` lines must fail to
# compile, so they prove the types are strict (an `any` or a plain string would let them pass).
cat >"$work/ts/check.ts" <<'TS'
import type { components, operations, paths } from "./api";

type Opportunity = components["schemas"]["OpportunityView"];
type Stage = Opportunity["stage"];
// Exhaustive: a stage added to or missing from the document fails to compile here.
const everyStage: Record<Stage, true> = {
  new: true, contacting: true, engaged: true, qualified: true, booked: true,
  won: true, lost: true, unreachable: true, nurture: true, do_not_contact: true,
};
// @ts-expect-error not a stage
const notAStage: Stage = "maybe";

type ListQuery = NonNullable<operations["listOpportunities"]["parameters"]["query"]>;
const query: ListQuery = { stage: "qualified", paused: true, limit: 50 };
// @ts-expect-error limit is a number
const textLimit: ListQuery = { limit: "50" };
// @ts-expect-error paused is a boolean
const textPaused: ListQuery = { paused: "true" };

type Created = paths["/v1/opportunities"]["post"]["responses"][201]["content"]["application/json"];
// A lead may come with an email alone (ADR 0046 addendum): its phone may be null.
const phoneOf = (o: Created): string | null => o.contact.phone;
const teamOf = (o: Opportunity): string | null => o.team;
type Page = components["schemas"]["OpportunityPage"];
const firstStage = (p: Page): Stage | undefined => p.items[0]?.stage;
const nextCursor = (p: Page): string | null => p.next_cursor;
type Timeline = components["schemas"]["TimelinePage"];
const ruleOf = (t: Timeline): string | undefined => t.items[0]?.why?.rule;
type Paused = operations["pauseOpportunity"]["responses"][200]["content"]["application/json"];
const isPaused = (o: Paused): boolean => o.paused;
type Bulk = components["schemas"]["BulkOutcome"];
const applied = (b: Bulk): number | undefined => b.applied;
type ErrorCode = components["schemas"]["ErrorBody"]["error"];
const refused: ErrorCode = "already_paused";
// @ts-expect-error not an error code
const unknownCode: ErrorCode = "oops";

export const used = [everyStage, notAStage, query, textLimit, textPaused, phoneOf, teamOf,
  firstStage, nextCursor, ruleOf, isPaused, applied, refused, unknownCode];
TS
"$bin/tsc" --noEmit --strict --target es2020 --module es2020 --moduleResolution node \
  "$work/ts/check.ts"

log "Python client (openapi-python-client) against $BASE"
cat >"$work/client.yaml" <<'YAML'
project_name_override: neuronx-client
package_name_override: neuronx_client
post_hooks: []
# A recording's audio is MP3; the generator models binary bodies as octet-stream files only.
content_type_overrides:
  audio/mpeg: application/octet-stream
YAML
"$tools/venv/bin/openapi-python-client" generate --path "$work/openapi.json" \
  --config "$work/client.yaml" --output-path "$work/py/neuronx_client" --meta none \
  --fail-on-warning >"$work/generate.log" 2>&1 || { cat "$work/generate.log" >&2; exit 1; }
status=0
PYTHONPATH="$work/py" "$tools/venv/bin/python" scripts/openapi_client_check.py \
  "$BASE" "$OWNER_KEY" || status=$?
if [ "$status" != 0 ] && [ -s "$TEMP_DIR/serve.log" ]; then
  log "server log:"; tail -n 50 "$TEMP_DIR/serve.log" >&2
fi
exit "$status"
