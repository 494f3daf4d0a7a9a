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
