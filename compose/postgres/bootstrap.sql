-- Creates the application role and database, and the analytics role and
-- database. Both stacks run it as the superuser. compose/native/stack.sh
-- runs it on every `up` that includes postgres, and the postgres image runs
-- it once from /docker-entrypoint-initdb.d. It is idempotent, and the ALTER
-- ROLE statements reset the attributes on every run.
--
-- The commerce role is not a superuser. CREATEDB lets the test runner create its test
-- databases, and REPLICATION lets the CDC relay open a logical replication
-- slot.
SELECT 'CREATE ROLE commerce LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'commerce')\gexec

ALTER ROLE commerce LOGIN NOSUPERUSER CREATEDB NOCREATEROLE REPLICATION PASSWORD 'commerce';

SELECT 'CREATE DATABASE commerce OWNER commerce'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'commerce')\gexec

-- The analytics projection lives in a database of its own, owned by a role of
-- its own. That role has no privileges on the order tables, which belong to
-- commerce. CREATEDB lets the test runner create test_*_analytics as this role.
SELECT 'CREATE ROLE commerce_analytics LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'commerce_analytics')\gexec

ALTER ROLE commerce_analytics LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION PASSWORD 'commerce_analytics';

SELECT 'CREATE DATABASE commerce_analytics OWNER commerce_analytics'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'commerce_analytics')\gexec

-- Only the owner (and superusers) may connect, so the commerce role, which the
-- storefront uses, cannot read the projection.
REVOKE CONNECT ON DATABASE commerce_analytics FROM PUBLIC;
