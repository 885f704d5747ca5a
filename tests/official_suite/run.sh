#!/usr/bin/env bash
# Run the official synapsePythonClient integration suite (its in-scope part, unchanged) against a
# local synapse-declare emulator. Run by hand; CI has no GitHub. See README.md next to this file.
#
#   SPC_GIT_DIR=/path/to/synapsePythonClient/.git tests/official_suite/run.sh [pytest args...]
#
# Nothing leaves loopback: pytest-socket allows only 127.0.0.1/localhost, HTTP(S)_PROXY point at
# a dead loopback port (NO_PROXY=127.0.0.1,localhost), and boto3 is sent to the emulator's S3.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$REPO/tests/official_suite"
WORK=${SPC_WORK:-/tmp/spc-official}
SPC_GIT_DIR=${SPC_GIT_DIR:?set SPC_GIT_DIR to a synapsePythonClient git directory}
# Newest develop commit in the stored snapshot (2026-06-11, after v4.13.0). Re-checked 2026-12-02
# on a fresh snapshot: no v4.14.0 tag, and no commit whose synapsePythonClient version file or
# docs/news.md names 4.14.0 (the newest says 4.13.0), so the nearest commit is kept.
SPC_REF=${SPC_REF:-7c6056351fbf4eb7ada8ae87bbde40692cbc3e13}
PORT=${SPC_EMULATOR_PORT:-18765}
# Per-request latency (ms). The emulator answers in about a millisecond; synapseclient's cache
# compares file modification times at one-second resolution, so a test that rewrites a file right
# after uploading it (test_sync_to_synapse_activities_added_then_removed_...) sees "unchanged" and
# never uploads. 40 ms, well under synapse.org's usual answer time, restores the real timing.
LATENCY_MS=${SPC_LATENCY_MS:-40}
VENV="$WORK/venv"
SERVE="$REPO/.venv/bin/synapse-declare"

mkdir -p "$WORK"
rm -rf "$WORK/src" "$WORK/home" "$WORK/state" "$WORK/exchanges.jsonl" "$WORK/junit.xml" "$WORK/summary.out"
mkdir -p "$WORK/src" "$WORK/home"
git --git-dir="$SPC_GIT_DIR" archive "$SPC_REF" tests pytest.ini | tar -x -C "$WORK/src"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q -c "$REPO/constraints.txt" synapseclient==4.14.0 \
        pytest pytest-asyncio pytest-socket pytest-mock pytest-xdist func-timeout 'pandas<3' numpy \
        boto3 httpx
fi

TOKEN="official-suite-token"
cat > "$WORK/users.yaml" <<USERS
users:
  - userName: integration-test-user
    token: $TOKEN
    email: integration-test-user@example.org
    certified: true
  # The invitee test_team_async.py names; it exists on the real Synapse the suite is written for.
  - userName: DPETestUser2
    token: dpe-test-user-2-token
    email: dpetestuser2@example.org
USERS

"$SERVE" emulator serve --port "$PORT" --users "$WORK/users.yaml" --data-dir "$WORK/state" \
    --request-log "$WORK/exchanges.jsonl" --latency-ms "$LATENCY_MS" > "$WORK/emulator.out" 2>&1 &
EMULATOR_PID=$!
trap 'kill "$EMULATOR_PID" 2>/dev/null; wait "$EMULATOR_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q "S3/STS endpoint" "$WORK/emulator.out" 2>/dev/null && break
    sleep 0.2
done
S3_ENDPOINT=$(sed -n 's/^  S3\/STS endpoint *= *//p' "$WORK/emulator.out")
[ -n "$S3_ENDPOINT" ] || { cat "$WORK/emulator.out"; exit 1; }
BASE="http://127.0.0.1:$PORT"

cat > "$WORK/home/.synapseConfig" <<CONFIG
[default]
username = integration-test-user
authtoken = $TOKEN

[authentication]
username = integration-test-user
authtoken = $TOKEN

[endpoints]
repoEndpoint = $BASE/repo/v1
authEndpoint = $BASE/auth/v1
fileHandleEndpoint = $BASE/file/v1
portalEndpoint = $BASE/portal/
CONFIG

export HOME="$WORK/home"
export HTTP_PROXY="http://127.0.0.1:9" HTTPS_PROXY="http://127.0.0.1:9"
export http_proxy="$HTTP_PROXY" https_proxy="$HTTPS_PROXY"
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
# Every boto3 client (the tests' own and synapseclient's STS transfers) talks to the emulator's S3.
export AWS_ENDPOINT_URL_S3="$S3_ENDPOINT" AWS_ENDPOINT_URL_STS="$S3_ENDPOINT"
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$WORK/home/no-aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/home/no-aws-creds"
# The suite's external-bucket tests get their buckets in the emulator's S3 (moto): the one named
# by EXTERNAL_S3_BUCKET_NAME and the fixed Sage bucket test_storage_location_async.py uses.
export AWS_ACCESS_KEY_ID=emulator-access-key AWS_SECRET_ACCESS_KEY=emulator-secret-key
export EXTERNAL_S3_BUCKET_NAME="spc-external-$(date +%s)"
export EXTERNAL_S3_BUCKET_AWS_ACCESS_KEY_ID=emulator-access-key
export EXTERNAL_S3_BUCKET_AWS_SECRET_ACCESS_KEY=emulator-secret-key
"$VENV/bin/python" - <<PY
import boto3
s3 = boto3.client("s3", endpoint_url="$S3_ENDPOINT", region_name="us-east-1",
             aws_access_key_id="x", aws_secret_access_key="y")
for bucket in ("$EXTERNAL_S3_BUCKET_NAME", "test-storage-location-python-client-us-east-1"):
    s3.create_bucket(Bucket=bucket)
PY

mapfile -t SELECTION < <(grep -v '^\s*\(#\|$\)' "$HERE/selection.txt")
cd "$WORK/src"
set +e
"$VENV/bin/python" -m pytest --allow-hosts=127.0.0.1,localhost \
    -o asyncio_default_fixture_loop_scope=session -q -rfEs \
    --junitxml="$WORK/junit.xml" "${SELECTION[@]}" "$@" 2>&1 | tee "$WORK/pytest.out"
STATUS=${PIPESTATUS[0]}
set -e
# In-scope totals and the exact list of what cannot pass here (expected.txt); a failure outside
# the list, or a listed test that passed, makes the run fail.
if [ -f "$WORK/junit.xml" ]; then
    "$VENV/bin/python" "$HERE/summarize.py" "$WORK/junit.xml" "$HERE/expected.txt" \
        | tee "$WORK/summary.out"
    STATUS=${PIPESTATUS[0]}
fi
CONFORMANCE="$REPO/../shared/tools/synapse_conformance.py"
if [ -f "$CONFORMANCE" ]; then
    "$REPO/.venv/bin/python" "$CONFORMANCE" --exchange "$WORK/exchanges.jsonl" \
        > "$WORK/conformance.out" 2>&1 || true
    tail -n 5 "$WORK/conformance.out"
fi
exit "$STATUS"
