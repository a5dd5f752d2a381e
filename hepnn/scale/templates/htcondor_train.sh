#!/bin/bash
# Wrapper for htcondor_train.sub: runs `hepnn train CONFIG --out RUN_DIR` (resuming
# from RUN_DIR/checkpoints when they exist) and turns SIGTERM (eviction) into the
# checkpoint exit code 85, so HTCondor reruns the same command.
set -uo pipefail
{{setup}}
CONFIG="$1"
RUN_DIR="$2"
CHECKPOINT_EXIT_CODE=85

stop() {
    echo "hepnn: SIGTERM received; exiting with ${CHECKPOINT_EXIT_CODE} to be rerun (resume)"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    exit "$CHECKPOINT_EXIT_CODE"
}
trap stop TERM

hepnn train "$CONFIG" --out "$RUN_DIR" &
pid=$!
status=0
wait "$pid" || status=$?
exit "$status"
