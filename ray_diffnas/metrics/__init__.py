"""Metrics: RFID (a rapid FID) and the feature extractors it compares images with."""
