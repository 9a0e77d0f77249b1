"""Leadflow's domain: models, services and the pipeline. Never imports streamlit, pages or jobs."""
