"""The benchmark: the service as deployed, beside a bare reference, in one run.

    python -m bench run [--target DIR]      # make bench
    python -m bench profile [--target DIR]  # make bench-profile
    python -m bench show [RESULT]
    python -m bench compare BEFORE AFTER

Only the standard library runs in this process; the service, the consumer
and the reference run from the target checkout's own virtualenv. README.md
("Benchmark") defines every figure.
"""
