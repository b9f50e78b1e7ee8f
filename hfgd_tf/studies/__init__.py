"""Experiment studies: which runs answer a question, and how their results are reported."""
