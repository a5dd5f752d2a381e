#!/bin/bash
# Score many ROOT files with a trained hepnn tagger on one SLURM allocation with a local
# Dask cluster; requeued on preemption, and resumed (files already scored are skipped).
# Rendered by `hepnn jobs slurm-predict`. Submit with: sbatch {{script}}
# For a cluster spanning many jobs use dask-jobqueue (SLURMCluster) and pass its
# scheduler address: `hepnn predict --out DIR --scheduler tcp://HOST:8786 -- RUN_DIR FILES...`.
#SBATCH --job-name=hepnn-predict
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={{cpus}}
#SBATCH --time={{time}}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@{{signal_seconds}}
#SBATCH --output=hepnn-predict-%j.log
{{sbatch_lines}}
set -uo pipefail
# relative paths (config, run directory, files, set-up lines) are those of the folder `hepnn jobs` ran in
WORKDIR={{workdir}}
cd "$WORKDIR" || { echo "hepnn: cannot enter $WORKDIR, the folder hepnn jobs ran in; write the job there again from a folder this node sees" >&2; exit 1; }
{{setup}}
RUN_DIR={{run_dir}}
OUT={{out}}

requeue() {
    echo "hepnn: job ${SLURM_JOB_ID} got USR1; requeueing (restart ${SLURM_RESTART_COUNT:-0})"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    scontrol requeue "${SLURM_JOB_ID}"
    exit 0
}
stop() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    exit 143
}
trap requeue USR1
trap stop TERM

# rerunning the same command resumes: outputs are written atomically with a sidecar.
# Options first, then `--`: a file name starting with - (from a glob too) is read as a file, not an option.
hepnn predict --out="$OUT" --workers={{workers}} -- "$RUN_DIR" {{files}} &
pid=$!
status=0
wait "$pid" || status=$?
exit "$status"
