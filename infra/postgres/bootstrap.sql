-- Roles, database and CDC publication for claims_db. Run by a superuser with psql variables:
--   psql -v app_password=... -v cdc_password=... -f bootstrap.sql
-- Idempotent: safe to run on every start.
SELECT 'CREATE ROLE claims LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'claims') \gexec
ALTER ROLE claims WITH LOGIN PASSWORD :'app_password';
-- Debezium's role: replication plus read access, nothing more.
SELECT 'CREATE ROLE debezium LOGIN REPLICATION' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'debezium') \gexec
ALTER ROLE debezium WITH LOGIN REPLICATION PASSWORD :'cdc_password';
SELECT 'CREATE DATABASE claims_db OWNER claims' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'claims_db') \gexec
\connect claims_db
GRANT USAGE ON SCHEMA public TO debezium;
ALTER DEFAULT PRIVILEGES FOR ROLE claims IN SCHEMA public GRANT SELECT ON TABLES TO debezium;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO debezium;
-- One publication for the whole schema, so a table a team adds later is captured with no connector change.
SELECT 'CREATE PUBLICATION claims_publication FOR TABLES IN SCHEMA public'
 WHERE NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'claims_publication') \gexec
