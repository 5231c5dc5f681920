"""The keys of a sidecar: the JSON beside every checkpoint and soft-label file (DESIGN section 8).

A checkpoint's sidecar holds the run's meta (seed, config fingerprint, environment, the request it was
trained for, executor, worker), the step's position, key and data, and what save_checkpoint adds (format,
the tensors file's sha256, the parameter hash). A soft-label file's sidecar holds the same save_checkpoint
fields, its key, position and teacher, and the execution path of the teacher it came from. Every module
reads and writes them through these constants.
"""

from __future__ import annotations

from purge_engine.rundir.names import CheckpointName

# written by save_checkpoint
FORMAT = "format"
FILE_SHA256 = "file_sha256"  # sha256 of the tensors file
PARAM_HASH = "param_hash"  # checkpoints.hash_tensors: equal hashes mean bitwise-equal parameters
# the content key, and the request (None: first training) that wrote the file
KEY = "key"
REQUEST_ID = "request_id"
# the run's meta, in every checkpoint (Run._meta)
SEED = "seed"
CONFIG_FINGERPRINT = "config_fingerprint"
ENVIRONMENT = "environment"  # what decides the bits (checkpoints.environment, plus memory format and path)
PATH = "path"  # the execution path: inside ENVIRONMENT of a checkpoint, at the top of a soft-label file
EXECUTOR = "executor"
WORKER = "worker"
# a checkpoint's step (training.save_step)
ROLE = "role"
CONSTITUENT = "constituent"
STEP = "step"
SAMPLES = "samples"
IDS_HASH = "ids_hash"
EPOCHS = "epochs"
LABEL_KEYS = "label_keys"
LOSS = "loss"
# a soft-label file (soft_labels.LabelCache)
METHOD = "method"
STUDENT_ID = "student_id"
CHUNK_ID = "chunk_id"
SLICE_ID = "slice_id"
TEACHER_ID = "teacher_id"
TEACHER_KEY = "teacher_key"
FORWARDS = "forwards"  # teacher forward passes it cost

RECORDED = (KEY, PARAM_HASH, FILE_SHA256, REQUEST_ID)  # what the manifest keeps of each sidecar


def identity(name: CheckpointName, key: str) -> dict:
    """The fields a load asks of a checkpoint's sidecar: its position and its key."""
    return {ROLE: name.role, CONSTITUENT: name.constituent, STEP: name.step, KEY: key}


def execution_path(meta: dict | None) -> str | None:
    """The execution path a checkpoint records (None: no sidecar, or a run from before paths were)."""
    return ((meta or {}).get(ENVIRONMENT) or {}).get(PATH)
