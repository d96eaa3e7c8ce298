"""SQL dialect knowledge: the catalog queries each database needs."""
