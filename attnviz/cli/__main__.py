"""``python -m attnviz.cli``: the ``attnviz`` command."""

import sys

from attnviz.cli import main

sys.exit(main())
