"""Offline evaluation in plain NumPy and PyTorch (no Django imports): splits, metrics and full ranking."""
