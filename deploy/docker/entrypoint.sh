#!/bin/sh
# One role per container. The first argument picks it; the rest is passed on.
#   serve (default)   petalops serve on $HOST:$PORT ($WORKERS workers), waiting for the model
#                     up to $WAIT_FOR_MODEL seconds (default 0: no limit)
#   mlflow [server]   the MLflow tracking server + registry: MLFLOW_BACKEND_STORE_URI,
#                     MLFLOW_ARTIFACTS_DESTINATION, MLFLOW_WORKERS, MLFLOW_SERVER_ALLOWED_HOSTS
#   rollout           the rollout controller: petalops rollout run (under a Kubernetes lease
#                     when PETALOPS_LEASE_NAME is set)
#   monitor           petalops monitor watch: drift, live accuracy, alerts, retrain trigger
#                     (under a Kubernetes lease too when PETALOPS_LEASE_NAME is set)
#   train             petalops train (e.g. a retraining CronJob)
#   anything else     run as given, e.g. `petalops registry list` or `sh`
set -eu

HOST=${HOST:-0.0.0.0}
PORT=${PORT:-5000}
WORKERS=${WORKERS:-1}
PETALOPS_HOME=${PETALOPS_HOME:-/var/lib/petalops}
SEED=/opt/petalops/seed

# The embedded store baked in at build time lives in $PETALOPS_HOME. When that path is an
# empty volume (read-only root filesystem, tmpfs, emptyDir) start from the pristine copy;
# the paths match, so the store's absolute artifact locations stay valid.
seed_home() {
  if [ -z "${PETALOPS_MLFLOW_URI:-}" ] && [ ! -e "$PETALOPS_HOME/mlflow.db" ] \
     && [ -e "$SEED/mlflow.db" ] && [ "$PETALOPS_HOME" = /var/lib/petalops ]; then
    cp -a "$SEED/." "$PETALOPS_HOME/"
  fi
}

role=${1:-serve}
[ $# -gt 0 ] && shift

# The serve-only image (`--target serve`) carries no MLflow server, controller or trainer.
if [ -e /opt/petalops/serve-only ]; then
  case "$role" in
    mlflow|rollout|monitor|train)
      echo "error: role '$role' needs the full image; this is the serve-only image (docker build --target serve)" >&2
      exit 2
      ;;
  esac
fi

case "$role" in
  serve)
    seed_home
    # An orchestrator may start replicas before the first model is registered (or before the
    # MLflow server answers): stay up, unready on /readyz, until it appears.
    exec petalops serve --host "$HOST" --port "$PORT" --workers "$WORKERS" --wait-for-model "${WAIT_FOR_MODEL:-0}" "$@"
    ;;
  mlflow)
    [ "${1:-}" = server ] && shift
    set -- --host "$HOST" --port "$PORT" --workers "${MLFLOW_WORKERS:-2}" \
      --backend-store-uri "${MLFLOW_BACKEND_STORE_URI:-sqlite:///$PETALOPS_HOME/mlflow-server.db}" \
      --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-$PETALOPS_HOME/mlflow-artifacts}" \
      --serve-artifacts "$@"
    # Host-header checks: MLflow reads MLFLOW_SERVER_ALLOWED_HOSTS itself (e.g. "mlflow:*").
    exec mlflow server "$@"
    ;;
  rollout)
    seed_home
    if [ -n "${PETALOPS_LEASE_NAME:-}" ]; then
      exec python3 /opt/petalops/lease.py -- petalops rollout run "$@"
    fi
    exec petalops rollout run "$@"
    ;;
  monitor)
    seed_home
    if [ -n "${PETALOPS_LEASE_NAME:-}" ]; then
      exec python3 /opt/petalops/lease.py -- petalops monitor watch "$@"
    fi
    exec petalops monitor watch "$@"
    ;;
  train)
    seed_home
    exec petalops train "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
