"""`python -m logikal_square_sync.force_sync`, the documented spelling of `lss-force-sync`.

The code lives in logikal_square_sync.logikal.force_sync; this module only keeps the
command's old name working (docs, runbooks and operators' shell history use it).
"""

import sys

from logikal_square_sync.logikal.force_sync import *  # noqa: F403  (the same names as before)
from logikal_square_sync.logikal.force_sync import __all__, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
