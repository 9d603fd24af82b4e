"""Talking to LogiKal's MBIOE API: the session (a server-side cursor) and its errors, the
records it answers, the parts-list files it sends, and the pool of sessions with the planner that
costs their moves."""
