"""How every konbit process logs: one format, tagged by process, chatty libraries quieted."""

from __future__ import annotations

import logging

#: Libraries whose INFO lines say nothing an operator acts on: httpx logs every request the
#: demo makes (the demo prints its own progress), Alembic every plugin it sets up.
QUIETER = ("httpx", "alembic.runtime.plugins")


def configure(level: str, process: str | None = None) -> None:
    """Log at ``level`` (a name: ``info``, ``DEBUG``), each line tagged with ``process``."""
    tag = f" [{process}]" if process else ""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(
        level=numeric, format=f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s"
    )
    if numeric > logging.DEBUG:  # at DEBUG, everything
        for name in QUIETER:
            logging.getLogger(name).setLevel(logging.WARNING)
