#!/bin/sh
# Container entrypoint: bring the schema to the newest revision, then serve the console.
# Arguments that start with "-" are passed on to `streamlit run`; any other command
# (`omni users create NAME --role admin`, `sh`) runs as given instead.
set -eu

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

# compose.yaml runs the upgrade once in its `migrate` service and turns this off for the replicas.
case "${OMNI_DB_UPGRADE_ON_START:-true}" in
    true | 1 | yes) omni db upgrade ;;
    *) echo "OMNI_DB_UPGRADE_ON_START=${OMNI_DB_UPGRADE_ON_START}: not upgrading the schema" ;;
esac

cd "$(dirname "$0")/.."  # the repository root (/app in the image)
exec streamlit run console/app.py \
    --server.port 8501 \
    --server.address 0.0.0.0 \
    --server.headless true \
    --browser.gatherUsageStats false \
    "$@"
