"""The consumer process: Huey workers plus the reconciler.

    python -m worker

SIGINT (Ctrl-C) stops it gracefully: running jobs finish their chunk and hand
the rest of their batch back to the queue. SIGTERM stops at once; an
interrupted chunk's transaction rolls back and the reconciler queues its batch
again once the lease runs out.
"""

import logging
import threading

from settings import settings
from storage.queue import huey
from worker.tasks import reconcile

log = logging.getLogger("worker")


def _reconcile_periodically(stop: threading.Event) -> None:
    while not stop.wait(settings.reconcile_seconds):
        try:
            reconcile()
        except Exception:
            log.exception("reconciler failed; trying again in %ss", settings.reconcile_seconds)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    consumer = huey.create_consumer(
        workers=settings.consumer_threads,
        worker_type="thread",
        initial_delay=0.05,
        backoff=1.15,
        max_delay=settings.consumer_max_poll_seconds,
        periodic=False,
    )
    reconcile()
    threading.Thread(
        target=_reconcile_periodically, args=(consumer.stop_flag,), name="Reconciler", daemon=True
    ).start()
    consumer.run()


if __name__ == "__main__":
    main()
