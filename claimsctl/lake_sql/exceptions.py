"""Errors of the lake SQL engine; the message says what to do."""


class LakeSQLError(Exception):
    """A query, view or lake location the engine cannot serve."""


class LakeNotFoundError(LakeSQLError):
    """The lake root holds none of the expected Delta tables."""


class TimeTravelError(LakeSQLError):
    """`--as-of` names a version or time a table does not have."""
