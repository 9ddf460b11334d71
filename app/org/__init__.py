"""Organisation: the unit tree (city, district, street/township), people and agencies."""
