"""Assembles the code location: each source system contributes its own Definitions."""

import dagster as dg

from logikal_square_sync.square import definitions as square

defs = dg.Definitions.merge(square.defs)
