#!/usr/bin/env bash
# First-start initialisation of claims_db in the postgres container (run from /docker-entrypoint-initdb.d,
# as the image's superuser, on an empty data directory only). Same SQL as the embedded stack:
#   1. bootstrap.sql: roles claims + debezium with their passwords, database claims_db, CDC publication;
#   2. schema.sql, applied as role claims so the application role owns every table.
# Expects infra/postgres mounted at /claims/postgres and CLAIMS_PG_PASSWORD / CLAIMS_PG_CDC_PASSWORD set.
set -euo pipefail

sql_dir="${CLAIMS_SQL_DIR:-/claims/postgres}"
: "${CLAIMS_PG_PASSWORD:?set CLAIMS_PG_PASSWORD (password of role claims) on the postgres service}"
: "${CLAIMS_PG_CDC_PASSWORD:?set CLAIMS_PG_CDC_PASSWORD (password of role debezium) on the postgres service}"

# The image's entrypoint has a local socket connection ready for its superuser during init.
psql_super=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}")

"${psql_super[@]}" --dbname postgres \
    -v app_password="$CLAIMS_PG_PASSWORD" \
    -v cdc_password="$CLAIMS_PG_CDC_PASSWORD" \
    -f "$sql_dir/bootstrap.sql"

# SET ROLE instead of logging in as claims: no dependency on pg_hba rules for the init-time socket, and
# objects still end up owned by claims. One transaction, so a broken schema leaves no half-built database.
"${psql_super[@]}" --dbname claims_db --single-transaction \
    -c "SET ROLE claims" \
    -f "$sql_dir/schema.sql"

echo "claims_db initialised: roles claims and debezium, publication claims_publication, schema applied as claims"
