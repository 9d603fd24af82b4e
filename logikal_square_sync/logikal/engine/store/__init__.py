"""Warehouse reads and writes of the LogiKal sync (SQLAlchemy Core, bulk statements).

`tree` holds the directories and projects, `contents` a project's phases, elevations and parts
lists (every write of them through `write_if_live`), `writes` what both write with.

Every function takes the caller's connection, so the caller decides what
commits together: a project's listing (phases, elevations and the rows that
vanished) in one transaction, each parts list in its own, as it arrives.

The projects sync and a project's contents sync run in different runs and may
overlap. Both write a project's rows inside `write_transaction`, and both
start by locking the project's row (`lock_project`, or the UPDATE that marks it
deleted), so their transactions touching one project run one after the other:
the contents writer sees a deletion committed before it and then writes
nothing live, and a deletion committed after it also marks what it wrote.
"""
