"""Bench: judging searchers on a table of (architecture -> metrics): the harness, the table, the
table trainable (which imports no torch) and the plot."""
