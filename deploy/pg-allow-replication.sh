#!/bin/bash
# Run once by the postgres image's entrypoint when it initialises the primary's data directory (compose
# profile `pg`): let the replica stream the WAL over the compose network, with the same password.
set -euo pipefail
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
