"""The HTTP edge: one function per operationId of openapi.yaml."""

import re
from collections.abc import Callable

from handlers import batches


def resolve(operation_id: str) -> Callable:
    """The handler for an operationId: `retryFailedItems` -> `batches.retry_failed_items`."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()
    return getattr(batches, name)
