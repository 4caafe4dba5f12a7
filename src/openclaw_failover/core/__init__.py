"""The model and the pure decisions: no I/O, no clock, no network.

``model`` holds the facts the actors report (probe results, command results,
notices, witness reports); ``state`` the standby's state and its strict reader;
``decide`` the one function that chooses what a check does,
``decide(state, observation, config, now) -> (new state, actions, reason)``,
and the other pure choices (recovery after a crash, what `ocf syncback` does
in each role); ``choices`` the forks met half-way through an action (abort a
takeover whose fence did not hold, undo a give-back nobody would serve after);
``results`` one result type per action (facts the actor reports) and ``settle``
folds a result into the state with the notices and the sentence;
``leadership`` what a host does about the etcd leader key;
``events`` the typed lines of ``events.jsonl`` (kinds, payloads, schema version, and
``parse_event``, which reads older lines too).  May import ``config`` only.
"""
