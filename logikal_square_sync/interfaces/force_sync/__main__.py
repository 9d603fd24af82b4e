import sys

from logikal_square_sync.interfaces.force_sync.command import main

sys.exit(main())
