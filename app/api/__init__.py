"""HTTP layer: routers, dependencies, the error table and the request middleware."""
