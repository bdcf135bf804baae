"""Realify a Level Sequence: MRQ renders, frames stream to the daemon as they land, results come back.

Flow: materials -> MRQ job -> connect to (or start) the daemon -> open a session -> the
``RealifyStream`` threads send frames as MRQ writes them while MRQ renders in PIE -> when
MRQ finishes, a cancellable ``ScopedSlowTask`` waits for the last windows -> the coarse and
realified sequences are imported as Img Media sources for side-by-side review.
Only one run at a time; ``cancel_active`` stops it from the menu.
"""

from __future__ import annotations

import unreal

from . import dependencies
from .mrq_files import OutputFolderWatcher, remove_frames
from .settings import RealifySettings

_active: "SequenceRealify | None" = None


def require_dependencies() -> bool:
    missing = dependencies.missing_modules()
    if missing:
        message = dependencies.missing_message(missing)
        unreal.log_error(message)
        unreal.EditorDialog.show_message("Coarse2Real", message, unreal.AppMsgType.OK)
        return False
    return True


def wait_with_progress(stream, total_frames: int, title: str) -> bool:
    """Block with a cancellable progress dialog until ``stream`` stops; False if the user cancelled."""
    shown = 0
    with unreal.ScopedSlowTask(total_frames, title) as task:
        task.make_dialog(True)
        while True:  # the cancel check comes first: a press during the render is honoured before any wait
            if task.should_cancel():
                stream.cancel()
                stream.wait()
                return False
            if stream.wait(0.1):
                break
            returned = stream.status.frames_returned
            task.enter_progress_frame(returned - shown, f"{title}: {stream.status.summary()}")
            shown = returned
    return not stream.status.cancelled


class SequenceRealify:
    def __init__(self, sequence, settings: RealifySettings):
        self.sequence = sequence
        self.settings = settings
        self.name = sequence.get_name()
        self.coarse_dir, self.results_dir = settings.folders(self.name)
        self.first_frame = sequence.get_playback_start()
        self.total_frames = sequence.get_playback_end() - self.first_frame
        self.client = self.session = self.stream = self.executor = None

    def start(self) -> None:
        from c2r.client import connect

        from .realify_stream import RealifyStream
        from .unreal_materials import ensure_pass_materials
        from .unreal_mrq import build_job, render

        for folder in (self.coarse_dir, self.results_dir):  # stale frames would be streamed as new ones
            remove_frames(folder, self.name)
        world = unreal.get_editor_subsystem(unreal.UnrealEditorSubsystem).get_editor_world()
        queue, _job = build_job(self.sequence, world.get_path_name(), self.coarse_dir, ensure_pass_materials(), self.settings.render_size)
        self.client = connect(self.settings.address, token=self.settings.token, start_daemon=False)
        self.session = self.client.realify(**self.settings.session_options())
        passes = ("",)  # one multilayer EXR per frame
        watcher = OutputFolderWatcher(self.coarse_dir, self.name, self.first_frame, passes)
        self.stream = RealifyStream(self.session, watcher, self.results_dir, self.name).start()
        unreal.log(f"Coarse2Real: rendering {self.total_frames} frames of {self.name} to {self.coarse_dir}, streaming to {self.settings.address}")
        self.executor = render(queue, self.on_render_finished)

    def on_render_finished(self, success: bool) -> None:
        global _active
        try:
            if not success:
                unreal.log_warning(f"Coarse2Real: the render of {self.name} failed or was cancelled; cancelling the session")
                self.stream.cancel()
                self.stream.wait()
                return
            self.stream.rendering_finished()
            finished = wait_with_progress(self.stream, self.total_frames, f"Realifying {self.name}")
            status = self.stream.status
            if status.error is not None:
                unreal.log_error(f"Coarse2Real: {self.name}: {status.error}")
            elif finished:
                from .unreal_review import review_side_by_side

                review_side_by_side(self.name, self.coarse_dir, self.results_dir)
            unreal.log(f"Coarse2Real: {self.name}: {status.summary()}; results in {self.results_dir}")
        finally:
            self.close()
            _active = None

    def cancel(self) -> None:
        if self.executor is not None:
            self.executor.cancel_all_jobs()
        if self.stream is not None:
            self.stream.cancel()

    def close(self) -> None:
        for part in (self.session, self.client):
            if part is not None:
                part.close()


def realify_sequence(sequence, settings: RealifySettings | None = None) -> SequenceRealify | None:
    """Start realifying ``sequence``; returns the run, or None if one is already running or deps are missing."""
    global _active
    if _active is not None:
        unreal.log_warning(f"Coarse2Real: {_active.name} is still realifying; cancel it first (Coarse2Real > Cancel)")
        return None
    if not require_dependencies():
        return None
    _active = SequenceRealify(sequence, settings or RealifySettings())
    try:
        _active.start()
    except Exception:
        _active.close()
        _active = None
        raise
    return _active


def cancel_active() -> None:
    if _active is None:
        unreal.log("Coarse2Real: nothing is realifying")
        return
    _active.cancel()



def realify_viewport(settings: RealifySettings | None = None, size: tuple[int, int] = (640, 360)) -> bool:
    """Capture the viewport (through the open sequence's range, if any) and realify it; blocks with progress."""
    from c2r.client import connect

    from .realify_stream import RealifyStream
    from .unreal_capture import CAPTURE_PASSES, capture_frames, sequencer_frames
    from .unreal_materials import ensure_pass_materials
    from .unreal_review import image_sequence_source

    if _active is not None or not require_dependencies():
        return False
    settings = settings or RealifySettings()
    name = "Viewport"
    coarse_dir, results_dir = settings.folders(name)
    for folder in (coarse_dir, results_dir):
        remove_frames(folder, name)
    frames, step = sequencer_frames()
    materials = ensure_pass_materials()
    with connect(settings.address, token=settings.token, start_daemon=False) as client, client.realify(**settings.session_options()) as session:
        watcher = OutputFolderWatcher(coarse_dir, name, frames[0], CAPTURE_PASSES)
        stream = RealifyStream(session, watcher, results_dir, name).start()
        capture_frames(coarse_dir, name, frames, size, materials, step)  # the stream sends while this captures
        stream.rendering_finished()
        finished = wait_with_progress(stream, len(frames), "Realifying the viewport")
    if stream.status.error is not None:
        unreal.log_error(f"Coarse2Real: viewport: {stream.status.error}")
        return False
    if finished:
        unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).open_editor_for_assets([image_sequence_source(f"{name}_realified", results_dir)])
    unreal.log(f"Coarse2Real: viewport: {stream.status.summary()}; results in {results_dir}")
    return finished
