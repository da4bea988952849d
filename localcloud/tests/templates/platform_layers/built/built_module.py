"""Shipped in a layer that sam build packs into python/."""

WHERE = "built layer"
