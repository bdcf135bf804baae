"""Running one window over several devices (sequence parallel): ``sequence``, ``group``."""
