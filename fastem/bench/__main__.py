"""``python -m fastem.bench``: run the comparison benchmark (see ``fastem.bench.cli``)."""

import sys

from fastem.bench import main

sys.exit(main())
