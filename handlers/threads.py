"""The threads that run handlers and heavy request parsing, off the event loop."""

from concurrent.futures import ThreadPoolExecutor

from settings import settings

# WEB_THREADS per web worker process: handlers (and their database work) and
# the parsing and validation of request bodies run here, never on the loop.
handler_threads = ThreadPoolExecutor(settings.web_threads, thread_name_prefix="handler")
