"""The HTTP edge: request models, tokens, error answers and the endpoint functions app.py calls."""
