"""The HTML report of a search (``ray-diffnas report DIR``), written at the end of every search."""
