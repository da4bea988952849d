"""Shipped in a layer that carries its own python/ folder."""

WHERE = "plain layer"
