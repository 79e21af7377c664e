"""``python -m medcorr.stream``: the stream connector without the rest of the ``medcorr`` CLI."""
from __future__ import annotations

import sys

from medcorr.stream.cli import main

if __name__ == "__main__":
    sys.exit(main())
