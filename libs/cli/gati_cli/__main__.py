"""`python -m gati_cli` runs the same CLI as the `gati-operator` script."""

import sys

from gati_cli.main import main

sys.exit(main())
