#!/bin/bash
# hepnn training on several SLURM tasks (tf.distribute MultiWorkerMirroredStrategy),
# requeued on preemption or near the time limit, and resumed from the run directory's checkpoint.
# Rendered by `hepnn jobs slurm-multinode`. Submit with: sbatch {{script}}
#SBATCH --job-name=hepnn-train-mw
#SBATCH --nodes={{nodes}}
#SBATCH --ntasks-per-node={{tasks_per_node}}
#SBATCH --cpus-per-task={{cpus}}
#SBATCH --time={{time}}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@{{signal_seconds}}
#SBATCH --output=hepnn-train-mw-%j.log
{{sbatch_lines}}
set -uo pipefail
# relative paths (config, run directory, files, set-up lines) are those of the folder `hepnn jobs` ran in
WORKDIR={{workdir}}
cd "$WORKDIR" || { echo "hepnn: cannot enter $WORKDIR, the folder hepnn jobs ran in; write the job there again from a folder this node sees" >&2; exit 1; }
{{setup}}
CONFIG={{config}}
RUN_DIR={{out}}   # on a filesystem every node sees: all workers read checkpoints there

# One worker per SLURM task. With SLURM_NTASKS > 1, training.distribute=auto picks
# MultiWorkerMirroredStrategy and resolves the cluster with SlurmClusterResolver (ports
# 8888, 8889, ... on each node); the input is sharded across the workers and worker 0
# (the chief) writes RUN_DIR.
requeue() {
    echo "hepnn: job ${SLURM_JOB_ID} got USR1; stopping training and requeueing (restart ${SLURM_RESTART_COUNT:-0})"
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

srun --kill-on-bad-exit=1 hepnn train "$CONFIG" --out "$RUN_DIR" --set training.distribute=auto &
pid=$!
status=0
wait "$pid" || status=$?
exit "$status"
