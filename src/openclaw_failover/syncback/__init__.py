"""Give-back data: every row and file the standby wrote reaches the primary.

``run.sync_back`` is the entry point (rows, then files); ``report`` the
SyncReport it returns as data; ``splitstate`` the takeover baseline and the
reconcile journal on disk; ``quarantine`` keeps every row or file before it is
deleted or replaced, and ``restore`` brings them back.  ``db/`` holds the
PostgreSQL work, ``files/`` the workspace files.  May import ``config``,
``core``, ``local`` and ``primary``.
"""
