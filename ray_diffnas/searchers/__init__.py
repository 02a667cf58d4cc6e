"""Searchers: the Tune base every project searcher builds on, the search memory, the objective, and
the factory that builds a searcher by name. ``llm/`` holds the LLM searcher (DiffNAS), ``graph/``
the graph diffusion searcher (DiNAS)."""
