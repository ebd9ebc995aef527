#!/bin/sh
# One-shot (docker-compose.yml, profile "citus"): register the coordinator and the workers.
# citus_add_node does nothing for a node already added, so running it again is harmless.
set -eu
psql -v ON_ERROR_STOP=1 -h citus-coordinator -U citygrid -d citygrid <<'SQL'
SELECT citus_set_coordinator_host('citus-coordinator', 5432);
SELECT citus_add_node('citus-worker1', 5432);
SELECT citus_add_node('citus-worker2', 5432);
SELECT * FROM citus_get_active_worker_nodes();
SQL
