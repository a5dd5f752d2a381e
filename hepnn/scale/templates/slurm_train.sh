#!/bin/bash
# hepnn training on one SLURM node; requeued on preemption or time limit, and resumed.
# Rendered by `hepnn jobs slurm`. Submit with: sbatch {{script}}
#SBATCH --job-name=hepnn-train
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gpus-per-node={{gpus}}
#SBATCH --cpus-per-task=8
#SBATCH --time={{time}}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@300
#SBATCH --output=hepnn-train-%j.log
{{sbatch_extra}}
set -uo pipefail

CONFIG={{config}}
RUN_DIR={{out}}

# SLURM sends USR1 300 s before the time limit (and SIGTERM on preemption): requeue the
# job. The requeued job runs this script again, and `hepnn train` on the same RUN_DIR
# resumes from RUN_DIR/checkpoints (last completed epoch, optimizer state, seeds).
requeue() {
    echo "hepnn: job ${SLURM_JOB_ID} signalled; requeueing (restart ${SLURM_RESTART_COUNT:-0})"
    scontrol requeue "${SLURM_JOB_ID}"
}
trap requeue USR1 TERM

hepnn train "$CONFIG" --out "$RUN_DIR" &
pid=$!
status=0
wait "$pid" || status=$?
# `wait` returns early when a trap fired: wait for the trainer to be stopped by SLURM
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || status=$?; done
exit "$status"
