"""``python -m medcorr``: the same as the ``medcorr`` command."""
import sys

from medcorr.cli import main

sys.exit(main())
