#!/bin/sh
# Create or update the Debezium connector on a Kafka Connect cluster, then wait until it runs.
#
#   CONNECT_URL=http://connect:8083 sh register-connector.sh [claims-postgres-connector.json]
#
# Uses PUT /connectors/<name>/config, which creates the connector or replaces its config, so running this
# again after editing the JSON is safe. The file keeps `${env:CLAIMS_...}` placeholders: the Connect worker
# resolves them from its own environment (EnvVarConfigProvider), so no secret passes through here.
# POSIX sh + curl + awk only: it runs in the curlimages/curl container (no jq there).
set -eu

CONNECT_URL="${CONNECT_URL:-http://localhost:8083}"
CONNECTOR_FILE="${1:-${CONNECTOR_FILE:-$(dirname "$0")/claims-postgres-connector.json}}"
CONNECTOR_NAME="${CLAIMS_CONNECTOR_NAME:-claims-postgres}"
WAIT_SECONDS="${REGISTER_WAIT_SECONDS:-180}"

log() { printf '%s register-connector: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

if [ ! -r "$CONNECTOR_FILE" ]; then
    log "cannot read $CONNECTOR_FILE; pass the connector JSON path as the first argument"
    exit 2
fi

# Print the value of the top-level "config" object of a Kafka Connect connector definition
# ({"name": ..., "config": {...}}). String-aware, so braces inside values like ${env:X} are not counted.
extract_config() {
    awk '
    { text = text $0 "\n" }
    END {
        n = length(text); depth = 0; in_str = 0; esc = 0; want = 0; start = 0; last = ""
        for (i = 1; i <= n; i++) {
            c = substr(text, i, 1)
            if (in_str) {
                if (esc) esc = 0
                else if (c == "\\") esc = 1
                else if (c == "\"") in_str = 0
                continue
            }
            if (c == " " || c == "\t" || c == "\n" || c == "\r") continue
            if (c == "\"") {
                in_str = 1
                if (depth == 1 && start == 0 && (last == "{" || last == ",") && substr(text, i, 8) == "\"config\"") want = 1
                last = "\""
                continue
            }
            if (c == "{") {
                depth++
                if (want && start == 0 && depth == 2 && last == ":") { start = i; want = 0 }
            } else if (c == "}") {
                if (start && depth == 2) { print substr(text, start, i - start + 1); exit 0 }
                depth--
            }
            last = c
        }
        exit 1
    }' "$1"
}

if ! config="$(extract_config "$CONNECTOR_FILE")" || [ -z "$config" ]; then
    log "$CONNECTOR_FILE has no top-level \"config\" object; expected {\"name\": ..., \"config\": {...}}"
    exit 2
fi

log "waiting up to ${WAIT_SECONDS}s for Kafka Connect at $CONNECT_URL to offer the PostgreSQL connector"
deadline=$(( $(date +%s) + WAIT_SECONDS ))
until curl -fsS "$CONNECT_URL/connector-plugins" 2>/dev/null | grep -q 'io.debezium.connector.postgresql.PostgresConnector'; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "Kafka Connect did not list io.debezium.connector.postgresql.PostgresConnector in time; check the connect container logs"
        exit 1
    fi
    sleep 3
done

log "PUT $CONNECT_URL/connectors/$CONNECTOR_NAME/config from $CONNECTOR_FILE"
if ! response="$(curl -sS --fail-with-body -X PUT -H 'Content-Type: application/json' \
        --data-binary "$config" "$CONNECT_URL/connectors/$CONNECTOR_NAME/config")"; then
    log "Kafka Connect rejected the connector config: $response"
    exit 1
fi

# A connector whose database is unreachable is accepted first and fails later: wait for RUNNING.
deadline=$(( $(date +%s) + WAIT_SECONDS ))
while :; do
    status="$(curl -fsS "$CONNECT_URL/connectors/$CONNECTOR_NAME/status" 2>/dev/null || true)"
    states="$(printf '%s' "$status" | grep -o '"state":"[A-Z]*"' | sed 's/.*:"\([A-Z]*\)"/\1/' | tr '\n' ' ')"
    case "$states" in
        *FAILED*)
            log "connector $CONNECTOR_NAME failed: $status"
            exit 1 ;;
        RUNNING\ RUNNING*)
            # The connector and its first task both run.
            log "connector $CONNECTOR_NAME is running: $status"
            exit 0 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "connector $CONNECTOR_NAME not running in time (states: ${states:-none}): $status"
        exit 1
    fi
    sleep 2
done
