#!/bin/sh
# Lets every host in the compose network open replication connections, which
# the CDC relay needs for a logical replication stream. The postgres image
# runs this once from /docker-entrypoint-initdb.d, after initdb and after it
# has added its own "host all all all" line, whose "all" does not match
# replication connections.
set -eu
echo "host replication all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
