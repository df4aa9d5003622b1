"""Evaluation: metrics now; comparisons, judges and reports grow here."""
