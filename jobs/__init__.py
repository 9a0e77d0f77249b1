"""The background job runner: claims due leads and runs the pipeline for them (see jobs/runner.py)."""
