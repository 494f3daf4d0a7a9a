"""Errors raised by the decision models. Each message says what to change."""

from __future__ import annotations


class OptimizerError(Exception):
    """Base class of every optimizer error."""


class InvalidProblemError(OptimizerError, ValueError):
    """The problem data are malformed: shapes, NaN or negative values, unknown ids."""


class InfeasibleProblemError(OptimizerError, ValueError):
    """No plan meets the constraints; the message gives the best achievable value."""


class BudgetTooSmallError(InfeasibleProblemError):
    """The budget cannot pay for the sites that must be kept."""


class CoverageUnreachableError(InfeasibleProblemError):
    """The coverage target is above what any set of allowed sites reaches."""


class ShapeMismatchError(InvalidProblemError):
    """Arrays disagree in size: the matrix, the demand vector, the site ids or a per-site vector."""


class InvalidCostError(InvalidProblemError):
    """A cost, time or demand is negative or NaN."""


class InvalidSiteCountError(InvalidProblemError):
    """``p`` is not a count the sites allow (more than the allowed sites, fewer than the must-keep ones)."""


class NoAllowedSitesError(InfeasibleProblemError):
    """Every site is forbidden."""


class RadiusUnreachableError(InfeasibleProblemError):
    """No client has any allowed site within the coverage radius."""


class CapacityShortfallError(InfeasibleProblemError):
    """The allowed sites together cannot hold the demand."""
