"""Deterministic, human-looking racer names."""

from __future__ import annotations

import random

FIRST_NAMES: tuple[str, ...] = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Aya", "Ben", "Bruno", "Carla", "Chen",
    "Chloe", "Dara", "David", "Diego", "Elena", "Emil", "Emma", "Farah", "Felix", "Grace",
    "Hana", "Hugo", "Ines", "Ivan", "Jade", "Jamal", "Jonas", "Julia", "Kai", "Kenji",
    "Lara", "Leo", "Lina", "Luca", "Maya", "Marco", "Mei", "Mila", "Nadia", "Nico",
    "Noah", "Olga", "Omar", "Priya", "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq",
    "Tess", "Theo", "Uma", "Victor", "Wen", "Yara", "Yusuf", "Zoe", "Zara", "Malik",
)  # fmt: skip

INITIALS = "ABCDEFGHIJKLMNOPRSTVWZ"


def racer_name(rng: random.Random) -> str:
    """A name like ``"Ada K."`` drawn from ``rng``."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(INITIALS)}."
