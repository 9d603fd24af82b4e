"""The dynamic partitions of the per-project LogiKal assets: one per project GUID."""

import dagster as dg

PROJECTS_PARTITIONS_NAME = "logikal_projects"

# Keys are LogiKal project GUIDs; `logikal/projects` adds them as it discovers
# projects, and the project-sync sensor adds any that are missing.
logikal_projects_partitions = dg.DynamicPartitionsDefinition(name=PROJECTS_PARTITIONS_NAME)
