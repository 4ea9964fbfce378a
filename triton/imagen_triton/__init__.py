"""Shared code for imagen's Triton python-backend models."""
