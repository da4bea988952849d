"""Fidelity suite support: recorded AWS expectations, a normaliser and the scoreboard."""
