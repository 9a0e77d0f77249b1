"""Sections of the Leads page: the import wizard and the lead table."""
