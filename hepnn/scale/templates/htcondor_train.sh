#!/bin/bash
# Wrapper for htcondor_train.sub: runs `hepnn train CONFIG --out RUN_DIR` (resuming
# from RUN_DIR/checkpoints when they exist) and turns SIGTERM (eviction) into the
# checkpoint exit code 85, so HTCondor reruns the same command.
set -uo pipefail
CONFIG="$1"
RUN_DIR="$2"
# relative paths (config, run directory, set-up lines) are those of the folder `hepnn jobs` ran in, when
# this node sees it (a shared filesystem); with file transfer the job stays in its scratch folder
WORKDIR={{workdir}}
if [ -d "$WORKDIR" ]; then cd "$WORKDIR"; fi
{{setup}}
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
