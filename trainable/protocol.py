"""Request and reply messages between the driver and a worker.

Every message is one pickle (protocol 5) sent with ``send_bytes``::

    request  (request_id, method, args, blob_follows)
    reply    (request_id, status, payload)

``status`` is ``"ok"`` (payload: the method's return value), ``"blob"``
(payload: None, and the next message on the pipe is the raw bytes of a
checkpoint blob) or ``"error"`` (payload: a :class:`RemoteError`). A
request with ``blob_follows`` set is followed by the raw blob bytes as
well, so a large checkpoint is never pickled a second time.

The driver keeps at most one request outstanding per worker and checks
that each reply carries the id of that request, so a reply can never be
taken for the reply to another request.

Requests that carry user objects (the config, ``setup`` keyword
arguments) are pickled with cloudpickle, which handles lambdas and classes
defined in ``__main__``; everything else uses the standard pickle.
"""

import logging
import pickle
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Optional, Tuple

import cloudpickle

logger = logging.getLogger(__name__)

OK = "ok"
BLOB = "blob"
ERROR = "error"

# Methods whose arguments may hold user objects and need cloudpickle.
_USER_OBJECT_METHODS = frozenset({"setup", "reset"})


@dataclass
class RemoteError:
    """An exception raised in a worker, as it travels to the driver."""

    type_name: str
    message: str
    traceback: str
    exception: Optional[BaseException] = None


def encode_request(request_id: int, method: str, args: Tuple[Any, ...],
                   blob_follows: bool = False) -> bytes:
    """Encode one request."""
    message = (request_id, method, args, blob_follows)
    if method in _USER_OBJECT_METHODS:
        return cloudpickle.dumps(message, protocol=5)
    return pickle.dumps(message, protocol=5)


def encode_reply(request_id: int, status: str, payload: Any) -> bytes:
    """Encode one reply, replacing values that cannot be pickled.

    A result dict may contain objects that do not pickle (an open file, a
    lock); those values are sent as their ``repr`` and a warning is logged,
    so one odd metric does not fail the trial.
    """
    try:
        return pickle.dumps((request_id, status, payload), protocol=5)
    except Exception as exc:
        if isinstance(payload, dict):
            logger.warning(
                "A reply contains values that cannot be pickled (%s); they "
                "are sent as their repr() instead.", exc,
            )
            cleaned = {key: _picklable_or_repr(value)
                       for key, value in payload.items()}
            return pickle.dumps((request_id, status, cleaned), protocol=5)
        if status == ERROR:
            payload.exception = None
            return pickle.dumps((request_id, status, payload), protocol=5)
        raise


def _picklable_or_repr(value: Any) -> Any:
    try:
        pickle.dumps(value, protocol=5)
        return value
    except Exception:
        if isinstance(value, dict):
            return {k: _picklable_or_repr(v) for k, v in value.items()}
        return repr(value)


def error_from_exception(exc: BaseException) -> RemoteError:
    """Capture an exception with its formatted traceback."""
    text = "".join(traceback.format_exception(type(exc), exc,
                                              exc.__traceback__))
    try:
        pickle.dumps(exc, protocol=5)
        sendable: Optional[BaseException] = exc
    except Exception:
        sendable = None
    return RemoteError(type(exc).__name__, str(exc), text, sendable)


def send_request(conn: Connection, request_id: int, method: str,
                 args: Tuple[Any, ...] = (),
                 blob: Optional[bytes] = None) -> None:
    """Send one request, followed by the raw blob if there is one."""
    conn.send_bytes(encode_request(request_id, method, args,
                                   blob is not None))
    if blob is not None:
        conn.send_bytes(blob)


def receive_reply(conn: Connection) -> Tuple[int, str, Any]:
    """Receive one reply; a blob reply returns the blob as its payload."""
    request_id, status, payload = pickle.loads(conn.recv_bytes())
    if status == BLOB:
        return request_id, OK, conn.recv_bytes()
    return request_id, status, payload
