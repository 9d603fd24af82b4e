"""Assembles the code location: each source system contributes its own Definitions."""

import dagster as dg

defs = dg.Definitions()
