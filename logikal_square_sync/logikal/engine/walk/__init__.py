"""Walking a project with a pool of sessions: listings, parts lists, and the confirmations a
404 or a missing row needs before anything counts as gone."""
