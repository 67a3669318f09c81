"""Helpers for the tests and the review script that are not part of reportgen (not in the wheel)."""
