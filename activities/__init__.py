"""The resolve activity and the SQL query activities a worker registers."""

from activities.extract import QUERY_ACTIVITIES
from activities.resolve import resolve_credentials

ALL_ACTIVITIES = [resolve_credentials, *QUERY_ACTIVITIES]

__all__ = ["ALL_ACTIVITIES", "QUERY_ACTIVITIES", "resolve_credentials"]
