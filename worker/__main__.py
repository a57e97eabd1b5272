"""The consumer process: Huey workers plus the reconciler.

    python -m worker

SIGINT (Ctrl-C) stops it gracefully: running jobs finish their chunk and hand
the rest of their batch back to the queue. SIGTERM stops at once: an
interrupted chunk's transaction rolls back, releasing its items, and the
batch is queued again straight away.
"""

import logging
import threading

from huey.consumer import Consumer

from settings import settings
from storage.queue import huey
from worker import housekeeping  # noqa: F401  (registers its periodic task)
from worker.tasks import reconcile, stopping

log = logging.getLogger("worker")


class _Consumer(Consumer):
    """Huey's consumer, telling the jobs in this process when it begins to stop."""

    def stop(self, graceful: bool = False) -> None:
        stopping.set()
        super().stop(graceful)


def _reconcile_periodically(stop: threading.Event) -> None:
    while not stop.wait(settings.reconcile_seconds):
        try:
            reconcile()
        except Exception:
            log.exception("reconciler failed; trying again in %ss", settings.reconcile_seconds)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    consumer = _Consumer(
        huey,
        workers=settings.consumer_threads,
        worker_type="thread",
        initial_delay=0.05,
        backoff=1.15,
        max_delay=settings.consumer_max_poll_seconds,
        # Every consumer schedules the housekeeping; running it twice is harmless.
        periodic=True,
    )
    reconcile()
    threading.Thread(
        target=_reconcile_periodically, args=(consumer.stop_flag,), name="Reconciler", daemon=True
    ).start()
    consumer.run()


if __name__ == "__main__":
    main()
