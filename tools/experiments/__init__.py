"""Experiments that test the library's claims end to end on controlled, generated data."""
