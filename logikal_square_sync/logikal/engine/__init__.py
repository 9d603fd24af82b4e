"""The LogiKal engine, in layers that each import only the ones before them; never imports dagster.

- `client`: the MBIOE session (a server-side cursor), its errors, the records and parts-list
  files it answers, the session pool and the planner that costs its moves;
- `store`: the warehouse's LogiKal tables (`tree` for directories and projects, `contents` for
  a project's phases, elevations and parts lists);
- `walk`: a project walked with the pool, and the confirmations a 404 or a short listing needs
  before anything counts as gone;
- `syncs`: what the assets run (the directory tree, the project list, a project's contents)
  and which projects are due.

The Dagster-facing modules one level up (assets, checks, jobs, sensors, ...) call into it;
it never calls back into them (test_imports.py holds these rules).
"""
