"""What kind of incident it is (the categories of the intake form and the rules' routing to agencies)."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    fire = "fire"
    gas = "gas"
    hazmat = "hazmat"
    construction = "construction"
    ebike = "ebike"
    hospital = "hospital"
    elderly_care = "elderly_care"
    traffic = "traffic"
    flood = "flood"
    geologic = "geologic"
    public_health = "public_health"
    public_security = "public_security"
    other = "other"


CATEGORIES = tuple(Category)
