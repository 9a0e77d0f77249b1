"""Compliance rules: SMS segments, quiet hours and suppressions."""
