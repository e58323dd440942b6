"""``python -m mlops_kit.cli``: the same as the ``mlops-kit`` command."""

import sys

from mlops_kit.cli import main

sys.exit(main())
