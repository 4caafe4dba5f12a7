"""The PostgreSQL half of sync-back.

``pgmeta`` reads the catalog (keys, columns, foreign keys); ``rowdiff`` streams
both sides' rows and finds the differences; ``merge`` writes the standby's rows
into the primary in one transaction; ``realign`` makes the standby equal to the
primary and points its subscription past the merge; ``splitkeys`` and
``splitstart`` record the standby's keys at takeover so deletes travel;
``rows`` runs them in order (journal, deletes, merge, realign, re-point).
"""
