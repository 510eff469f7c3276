"""Attribution tests with peers of the project's own: hand-overs, teardown, the hold."""
from e2elib import test  # noqa: F401
