"""`ocf doctor`: one line per check, with the fix for each problem.

``base`` holds what the groups share (report, Sink, context, the config group);
``run`` runs the groups in threads with time budgets; each other module is one
group or two (``ssh``, ``local``, ``version``, ``db``, ``telegram``,
``network``, ``monitoring``).
"""
