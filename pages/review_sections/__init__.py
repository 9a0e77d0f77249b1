"""Sections of the Review queue page: one draft's card and the bulk actions."""
