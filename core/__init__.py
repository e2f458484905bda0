"""What every app shares and nothing else: the error shape and its handler, pagination, throttling,
value checks, the JSON codec, request middleware, logging and tracing helpers, metric definitions.

The bottom layer: core imports no app, no storage plugin and not the project package
(``pyproject.toml`` [tool.importlinter] checks it).
"""

__version__ = "1.0.0"
