"""The syncs the assets run: the directory tree, the project list, a project's contents, and which
projects are due (with the failures that hold them back)."""
