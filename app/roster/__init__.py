"""Duty rosters: rotations, explicit shifts and overrides, and the one answer to "who is on duty"."""
