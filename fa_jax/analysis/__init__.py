"""Measuring what a rule does: alignment and norm diagnostics, hidden representations, gradient flow."""
