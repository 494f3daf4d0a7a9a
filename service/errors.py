"""The service's exceptions and its one error table.

Every entry point asks :func:`classify` what an exception means: the API's exception handler answers with its
HTTP status, the CLI exits with its exit code, and a run that fails records its message. Errors of the user's
input (a bad file, scenario or request, an infeasible plan, a missing region) carry a message naming the file,
field or id; anything else, a bare ``ValueError`` or ``KeyError`` from a bug included, is an *internal error*
and is never reported as the user's mistake.

=================================================  ======  =========  =========================================
error                                              HTTP    exit code  meaning
=================================================  ======  =========  =========================================
:class:`NotFoundError` (``RegionNotFoundError``)   404     2          a region, scenario or run that is not there
:class:`ConflictError`                             409     2          the request contradicts the stored state
:class:`PreconditionFailedError`                   412     2          ``If-Match`` names an older version
:class:`PayloadTooLargeError`                      413     2          an upload above the configured limit
:class:`UnsupportedMediaError`                     415     2          a body of the wrong content type
:class:`ConfigurationError`                        503     2          the installation lacks something (Leaflet,
                                                                         a Dask scheduler, a shared data folder)
:class:`LockedError`                               409     75         another batch holds the lock (EX_TEMPFAIL)
:class:`BadRequestError`                           422     2          a malformed request or argument
``OSError`` ENOSPC / EDQUOT (a full disk)           507     74         no space left to write (EX_IOERR)
``optimizer.errors.OptimizerError``                422     2          a bad or infeasible problem or scenario
``geodata.errors.GeodataError``                    422     2          a bad input file
anything else                                      500     1          internal error (a bug)
=================================================  ======  =========  =========================================
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from geodata.errors import GeodataError
from optimizer.errors import OptimizerError


class ServiceError(Exception):
    """Base class of the service's own errors."""


class NotFoundError(ServiceError, LookupError):
    """A region, scenario, run or result that does not exist (or belongs to another organisation)."""

    def __str__(self) -> str:  # LookupError subclasses such as KeyError quote their message; show it plainly
        return str(self.args[0]) if self.args else ""


class RegionNotFoundError(NotFoundError):
    """No prepared region of that name in the data folder."""


class ConflictError(ServiceError):
    """The request contradicts the stored state (a duplicate name, a stale version, a run still active)."""


class PreconditionFailedError(ServiceError):
    """A conditional request whose condition fails (``If-Match`` naming an older version)."""


class PayloadTooLargeError(ServiceError):
    """An upload exceeds the configured size limit."""

    def __init__(self, message: str, field_name: str = "") -> None:
        super().__init__(message)
        self.field_name = field_name


class UnsupportedMediaError(ServiceError):
    """A request body of a content type the endpoint does not take."""


class ConfigurationError(ServiceError):
    """The installation lacks something the request needs (for example Leaflet for the maps)."""


class LockedError(ServiceError):
    """Another process holds the lock of an exclusive job (the nightly batch): try again when it ends."""


class BadRequestError(ServiceError, ValueError):
    """A malformed request or command-line argument; the message names the field."""


@dataclass(frozen=True)
class ErrorKind:
    """What an exception means to each entry point."""

    status: int  # HTTP status of the API's answer
    exit_code: int  # exit code of the CLI
    user: bool  # the user's input (shown as it is) or a bug (an internal error)


#: The one error table, most specific first.
TABLE: tuple[tuple[type[BaseException], ErrorKind], ...] = (
    (NotFoundError, ErrorKind(404, 2, True)),
    (ConflictError, ErrorKind(409, 2, True)),
    (PreconditionFailedError, ErrorKind(412, 2, True)),
    (PayloadTooLargeError, ErrorKind(413, 2, True)),
    (UnsupportedMediaError, ErrorKind(415, 2, True)),
    (ConfigurationError, ErrorKind(503, 2, True)),
    (LockedError, ErrorKind(409, 75, True)),
    (BadRequestError, ErrorKind(422, 2, True)),
    (OptimizerError, ErrorKind(422, 2, True)),
    (GeodataError, ErrorKind(422, 2, True)),
)
INTERNAL = ErrorKind(500, 1, False)
#: A full disk or quota: not the user's input nor a bug, and said plainly.
DISK_FULL = ErrorKind(507, 74, True)
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def classify(exc: BaseException) -> ErrorKind:
    """The table's entry for ``exc``: the first class it is an instance of, else an internal error."""
    if disk_full(exc):
        return DISK_FULL
    for cls, kind in TABLE:
        if isinstance(exc, cls):
            return kind
    return INTERNAL


def message(exc: BaseException) -> str:
    """What users see: a user error's own message, or ``internal error: <type>: <message>`` for anything else."""
    if disk_full(exc):
        assert isinstance(exc, OSError)
        where = f" {exc.filename}" if exc.filename else ""
        return f"the disk is full: could not write{where} ({exc.strerror}); free some space and try again"
    if classify(exc).user:
        return str(exc).strip() or type(exc).__name__
    return f"internal error: {type(exc).__name__}: {exc}"
