"""gunicorn settings for the web tier (read by gunicorn from the working directory)."""

import os
import warnings

# Connexion 3.3 imports Starlette's test client when it loads, which warns
# about httpx in every web worker; it is not used at run time.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
# On SIGTERM, in-flight requests get this long to complete.
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG") or None
# gunicorn's control socket has one fixed path per user: several instances on
# one host (make run beside make web, a rehearsal) would take it from each other.
control_socket_disable = True
