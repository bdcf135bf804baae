"""Running one window over several devices (sequence parallel): ``sequence``, ``group``."""


class GroupFailed(RuntimeError):
    """A rank of an engine group failed or died; the group was torn down (the next load starts a fresh one).

    Here, not in ``group``, so an engine without a group can catch it without importing torch.distributed.
    """
