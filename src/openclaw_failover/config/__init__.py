"""The configuration: the one schema and everything derived from it.

``schema`` holds every key with its type, default, range and help text (the one
source), built from ``validate``'s Key/Section/ListOf, whose ``Validator`` checks a
document against it; ``loader`` turns a YAML file plus ``${VAR}`` values into the
frozen ``Config`` dataclasses (their defaults read from the schema), reporting every
error at once (``At 'a.b': ...``); ``safeyaml`` reads YAML without aliases bombs or
odd types; ``secrets`` holds the one masker (``cfg.masker``); ``example`` renders
``example.yaml`` (the shipped example, ``ocf config example``) and the README's key
reference from the schema (``make config-docs``).  Imports nothing else from ocf: every other package
may import it.
"""
