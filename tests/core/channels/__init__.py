"""Tests of core.channels."""
