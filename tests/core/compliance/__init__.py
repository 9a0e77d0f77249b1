"""Tests of core.compliance."""
