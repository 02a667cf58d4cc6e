"""The LLM searcher (DiffNAS): ``GPT4Searcher``, its prompt, its endpoint and a local LLM server."""
