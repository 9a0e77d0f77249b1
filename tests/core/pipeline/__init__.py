"""Tests of core.pipeline."""
