"""`python -m research ...` is the `research` command."""
import sys

from research.cli import main

sys.exit(main())
