#!/bin/bash
# hepnn training on one SLURM node; requeued on preemption or near the time limit, and resumed.
# Rendered by `hepnn jobs slurm`. Submit with: sbatch {{script}}
#SBATCH --job-name=hepnn-train
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={{cpus}}
#SBATCH --time={{time}}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@{{signal_seconds}}
#SBATCH --output=hepnn-train-%j.log
{{sbatch_lines}}
set -uo pipefail
# relative paths (config, run directory, files, set-up lines) are those of the folder `hepnn jobs` ran in
WORKDIR={{workdir}}
cd "$WORKDIR" || { echo "hepnn: cannot enter $WORKDIR, the folder hepnn jobs ran in; write the job there again from a folder this node sees" >&2; exit 1; }
{{setup}}
CONFIG={{config}}
RUN_DIR={{out}}

# SLURM sends USR1 to this script {{signal_seconds}} s before the time limit (or on
# `scancel --signal=USR1 --batch JOBID`): stop the trainer and requeue the job. The requeued
# job runs this script again, and `hepnn train` on the same RUN_DIR resumes from
# RUN_DIR/checkpoints (last completed epoch, or step with training.checkpoint_every_n_steps).
requeue() {
    echo "hepnn: job ${SLURM_JOB_ID} got USR1; stopping training and requeueing (restart ${SLURM_RESTART_COUNT:-0})"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    scontrol requeue "${SLURM_JOB_ID}"
    exit 0
}
# SIGTERM (scancel, preemption): stop the trainer; SLURM requeues preempted jobs itself
stop() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    exit 143
}
trap requeue USR1
trap stop TERM

hepnn train "$CONFIG" --out "$RUN_DIR" &
pid=$!
status=0
wait "$pid" || status=$?
exit "$status"
