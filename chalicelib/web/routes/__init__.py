"""The API's routes, one module per resource or concern, each a blueprint that app.py registers.
How a route is declared: chalicelib/web/registry.py."""
