"""Sections of the Run monitor page: the campaign picker, the live figures, the run controls, one lead."""
