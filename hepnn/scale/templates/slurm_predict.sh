#!/bin/bash
# Score many ROOT files with a trained hepnn tagger on one SLURM allocation with a local
# Dask cluster; requeued on preemption, and resumed (files already scored are skipped).
# Rendered by `hepnn jobs slurm-predict`. Submit with: sbatch {{script}}
# For a cluster spanning many jobs use dask-jobqueue (SLURMCluster) and pass its
# scheduler address: `hepnn predict RUN_DIR FILES... --out DIR --scheduler tcp://HOST:8786`.
#SBATCH --job-name=hepnn-predict
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={{workers}}
#SBATCH --time={{time}}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@120
#SBATCH --output=hepnn-predict-%j.log
{{sbatch_extra}}
set -uo pipefail

RUN_DIR={{run_dir}}
OUT={{out}}

requeue() {
    echo "hepnn: job ${SLURM_JOB_ID} signalled; requeueing (restart ${SLURM_RESTART_COUNT:-0})"
    scontrol requeue "${SLURM_JOB_ID}"
}
trap requeue USR1 TERM

# rerunning the same command resumes: outputs are written atomically with a sidecar
hepnn predict "$RUN_DIR" {{files}} --out "$OUT" --workers {{workers}} &
pid=$!
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || status=$?; done
exit "$status"
