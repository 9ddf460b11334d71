"""Accountability figures (问效问责, PRODUCT.md §11): per child unit and in total over a period, and their exports."""
