"""Sections of the Campaigns page: the list, the editor, the preview and the run controls."""
