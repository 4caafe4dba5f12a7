"""The operator's commands behind the CLI: everything run by hand.

``status`` and ``history`` read the state and the events; ``drill`` fails over
and back on purpose; ``install`` (with ``install_files``, the texts it writes, and
``installguard``) writes cron/systemd
schedules safely; ``init`` and ``init_ssh`` guide a first setup; ``doctor/``
checks the whole setup.  May import ``engine`` and everything below it.
"""
