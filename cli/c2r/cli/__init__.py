"""The `c2r` command (``c2r.cli.main``): one entry point, one subcommand per job.

The parts of coarse2real live in sibling packages of the ``c2r`` namespace:
``c2r.client`` (light, no torch), ``c2r.daemon`` (the render daemon), ``c2r.models``
(everything torch) and ``c2r.v1`` (the generated wire contract).
"""
