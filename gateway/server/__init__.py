"""The server layer: the ASGI side of a hub's connections (origins, negotiate, token lookup, endpoints,
the registry, the deadlines, the local node a backplane delivers to). It knows the hub only as a Handler.

Nothing is imported here, so that ``transports`` may import ``server.asgi`` while ``server.app`` imports
``transports``: the modules, not the packages, are what must not form a cycle.
"""
