-- Creates the application role and database. Both stacks run it as the
-- superuser. compose/native/stack.sh runs it on every `up` that includes
-- postgres, and the postgres image runs it once from
-- /docker-entrypoint-initdb.d. It is idempotent, and the ALTER ROLE resets
-- the attributes on every run.
--
-- The role is not a superuser. CREATEDB lets the test runner create its test
-- databases, and REPLICATION lets the CDC relay open a logical replication
-- slot.
SELECT 'CREATE ROLE commerce LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'commerce')\gexec

ALTER ROLE commerce LOGIN NOSUPERUSER CREATEDB NOCREATEROLE REPLICATION PASSWORD 'commerce';

SELECT 'CREATE DATABASE commerce OWNER commerce'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'commerce')\gexec
