"""gunicorn settings for the web tier (read by gunicorn from the working directory)."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
# On SIGTERM, in-flight requests get this long to complete.
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG") or None
