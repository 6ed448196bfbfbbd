"""Wiring: what a process is made of, apart from what each part does.

``backends`` opens the store, log and cache from their URLs (what operator commands need,
without the server); ``parts`` is what the roles of a serving process share while each
declares its components to the supervisor.
"""
