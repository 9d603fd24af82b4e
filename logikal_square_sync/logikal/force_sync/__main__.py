import sys

from logikal_square_sync.logikal.force_sync.command import main

sys.exit(main())
