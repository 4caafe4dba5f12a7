"""One check, and the loops and state around it.

``tick`` is the pipeline config -> lock -> observe -> decide -> act -> persist
-> notify; ``actions`` carries out what ``core.decide`` chose and reports what
happened; ``recovery`` reads reality after a crash and asks ``core.decide`` what
to do; ``store`` reads and writes the state file and the events log; ``lock``
keeps two checks apart; ``watch`` runs checks in a loop (`ocf watch`); ``coord/`` the
optional leadership on etcd (imported only when ``coordination:`` is configured).  May
import every package below it: ``config``, ``core``, ``local``, ``primary``,
``notify``, ``monitor`` and ``syncback``.
"""
