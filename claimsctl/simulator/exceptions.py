"""Errors of `claimsctl simulate`; each message says what to do."""

from __future__ import annotations


class SimulationError(Exception):
    """Base class of the simulator's errors."""


class SimulationConflictError(SimulationError):
    """A planned row collided with an existing unique key (usually two simulators on one database)."""


class SimulationStateError(SimulationError):
    """The database no longer matches what the simulator wrote (rows changed or deleted by someone else)."""


class LandingBucketMissingError(SimulationError):
    """The landing bucket does not exist on the S3 endpoint."""
