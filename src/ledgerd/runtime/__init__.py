"""The process runtime: what runs, watches and reports the components of a server.

``supervisor`` owns each component's life (run, wake, stop, close) and restarts a
crashed one; ``periodic`` is a supervised job on a timer; ``leader`` holds the leases
that make a role leader-only; ``workers`` starts and watches the API worker processes;
``health`` turns the supervisor's view into readiness and liveness, which ``probes``
serves over HTTP. The role packages declare their components with these pieces; the
wiring walks them.
"""
