"""App: the ``ray-diffnas`` command and a whole search run: options, the pipeline, results table, plots,
summary, and what running as a Ray job or being killed mid-write needs."""
