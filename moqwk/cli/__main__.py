"""``python -m moqwk.cli``: the same as the ``moqwk`` command."""

import sys

from moqwk.cli import main

sys.exit(main())
