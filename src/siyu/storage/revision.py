"""``python -m siyu.storage.revision "message"``: autogenerate a migration from the models."""

from __future__ import annotations

import sys

from siyu.core.settings import get_settings
from siyu.storage import migrate
from siyu.storage.engine import make_engine


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit('usage: python -m siyu.storage.revision "describe the change"')
    engine = make_engine(get_settings().database_url)
    migrate.upgrade(engine)
    migrate.revision(engine, sys.argv[1])


if __name__ == "__main__":
    main()
