"""`python -m hf_embed.cli`."""

import sys

from . import main

sys.exit(main())
