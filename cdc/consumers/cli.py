"""Argument types and output formatting shared by the consumer management commands."""
import argparse
from collections import Counter


def format_stats(stats: Counter) -> str:
    """Format outcome counts as "5 message(s): 3 applied, 2 duplicate"."""
    total = sum(stats.values())
    details = ", ".join(f"{count} {outcome}" for outcome, count in sorted(stats.items()) if count)
    return f"{total} message(s)" + (f": {details}" if details else "")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value
