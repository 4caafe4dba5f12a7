"""The configuration: the one schema and everything derived from it.

``schema`` holds every key with its type, default, range and help text (the one
source); ``loader`` turns a YAML file plus ``${VAR}`` values into the frozen
``Config`` dataclasses, reporting every error at once (``At 'a.b': ...``);
``safeyaml`` reads YAML without aliases bombs or odd types; ``secrets`` holds
the one masker (``cfg.masker``); ``example.yaml`` is the shipped example
(``ocf config example``).  Imports nothing else from ocf: every other package
may import it.
"""
