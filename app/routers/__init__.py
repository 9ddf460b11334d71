"""The HTTP layer: one thin module per resource."""
