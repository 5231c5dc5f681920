"""The run directory's one owner (DESIGN sections 3 and 8): what a run stores, under which names,
written how, and who may write it. Nothing happens at import; import the module you need.

    names.py      typed file names that format and parse themselves; the one walk over stored files
    sidecar.py    the keys of a checkpoint's and a soft-label file's JSON sidecar
    atomic.py     the one atomic write (temp file in the same folder, fsync, os.replace)
    store.py      RunStore: paths, config and plan, the execution record; run names, list_runs
    lock.py       one writer per run: the writer lock, and what holds it
    records.py    the ledger's record schema: entry kinds, body keys, a request's merged record
    ledger.py     the append-only, hash-chained forget ledger (SQLite) and its anchor
    leftovers.py  temp files of interrupted writes, removed while no live writer owns them
"""
