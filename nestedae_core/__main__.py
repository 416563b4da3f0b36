"""``python -m nestedae_core`` runs the ``nestedae`` command."""
import sys

from .cli import main

sys.exit(main())
