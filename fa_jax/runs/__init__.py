"""Runs a person can look at: run directories, command-line plumbing, the study engine, tables and plots."""
