#!/bin/bash
# hepnn training on several SLURM nodes (tf.distribute MultiWorkerMirroredStrategy),
# requeued on preemption or time limit, and resumed from the run directory's checkpoint.
# Rendered by `hepnn jobs slurm-multinode`. Submit with: sbatch {{script}}
#SBATCH --job-name=hepnn-train-mw
#SBATCH --nodes={{nodes}}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={{gpus}}
#SBATCH --cpus-per-task=8
#SBATCH --time={{time}}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@300
#SBATCH --output=hepnn-train-mw-%j.log
{{sbatch_extra}}
set -uo pipefail

CONFIG={{config}}
RUN_DIR={{out}}   # on a filesystem every node sees: all workers write checkpoints there

# One task per node. With SLURM_NTASKS > 1, training.distribute=auto picks
# MultiWorkerMirroredStrategy and resolves the cluster with SlurmClusterResolver; the
# input is sharded across the workers and worker 0 (the chief) writes RUN_DIR.
requeue() {
    echo "hepnn: job ${SLURM_JOB_ID} signalled; requeueing (restart ${SLURM_RESTART_COUNT:-0})"
    scontrol requeue "${SLURM_JOB_ID}"
}
trap requeue USR1 TERM

srun --kill-on-bad-exit=1 hepnn train "$CONFIG" --out "$RUN_DIR" --set training.distribute=auto &
pid=$!
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || status=$?; done
exit "$status"
