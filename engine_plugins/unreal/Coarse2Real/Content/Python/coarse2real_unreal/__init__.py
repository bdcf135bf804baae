"""Coarse2Real for Unreal Editor: realify a Level Sequence (Movie Render Queue) or the viewport.

Modules whose name starts with ``unreal_`` talk to the editor and import ``unreal``; every
other module is plain Python (numpy, OpenEXR, the c2r client) so it runs and is tested
outside the engine.
"""

__version__ = "0.2.0"
