"""Data: the image data sets a search trains on, read from what is on disk (nothing is downloaded)."""
