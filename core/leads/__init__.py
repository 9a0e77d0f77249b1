"""Leads: reading spreadsheets, mapping columns, normalising, importing and the lead table."""
