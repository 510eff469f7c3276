"""Attribution tests against real server software from Debian's archive."""
from e2elib import test  # noqa: F401
