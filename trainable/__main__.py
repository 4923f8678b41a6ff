"""``python -m trainable``: the ``trainable`` command (see trainable.cli)."""

import sys

from trainable.cli import main

if __name__ == "__main__":
    sys.exit(main())
