"""API routers: health, info, embed, items, search, divergence."""
