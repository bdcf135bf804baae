"""A Movie Render Queue job that writes everything the daemon needs, rendered through the editor's queue.

Settings and why:
* deferred pass with the two additional post-process materials (depth, view normal), multisample
  effects off so the passes line up pixel for pixel with the colour (no TAA jitter, DoF, blur);
  the pass fields exist from these engine versions (Python API, MoviePipelinePostProcessPass):
  5.4 ``enabled``, ``material`` only; 5.5 adds ``name``, ``high_precision_output`` (32-bit);
  5.7 adds ``use_lossless_compression`` (dev.epicgames.com/documentation/en-us/unreal-engine/python-api/
  class/MoviePipelinePostProcessPass?application_version=5.4 / 5.5 / 5.7). On 5.4 the passes are 16-bit
  half floats: depth saturates at 65504 cm (655 m), which the reader treats as sky.
* EXR output, multilayer, ZIP compression: one file per frame, the colour as the unnamed layer and
  each pass as a named layer, lossless on every version (ZIP is lossless, so the 5.7 switch only
  matters with DWA outputs, which this job never uses);
* file name ``{sequence_name}.{frame_number}``, 4-digit padding, overwrite on: the names ``mrq_files``
  maps back to frame indices.

The job goes into the editor's own queue (``MoviePipelineQueueSubsystem.get_queue()``) and renders with
``render_queue_with_executor_instance`` (Python API, class/MoviePipelineQueueSubsystem, 5.3-5.7), so the
editor knows a render is running (``is_rendering()``) and the MRQ window shows it. Jobs the user had
enabled in that queue are disabled for this render and re-enabled after it, and our job is removed.
"""

from __future__ import annotations

import unreal

FILE_NAME_FORMAT = "{sequence_name}.{frame_number}"
FRAME_DIGITS = 4
OTHER_IMAGE_OUTPUTS = ("MoviePipelineImageSequenceOutput_JPG", "MoviePipelineImageSequenceOutput_PNG", "MoviePipelineImageSequenceOutput_BMP")
HIGH_PRECISION_SINCE = (5, 5)
LOSSLESS_SINCE = (5, 7)


def engine_version() -> tuple[int, int]:
    """(major, minor) of the running editor, from ``SystemLibrary.get_engine_version()`` ("5.4.4-3557...+++UE5+Release-5.4")."""
    major, minor = unreal.SystemLibrary.get_engine_version().split(".")[:2]
    return int(major), int(minor)


def _post_process_pass(material, version: tuple[int, int]):
    entry = unreal.MoviePipelinePostProcessPass()
    entry.set_editor_property("enabled", True)
    entry.set_editor_property("material", material)
    if version >= HIGH_PRECISION_SINCE:
        entry.set_editor_property("high_precision_output", True)
    if version >= LOSSLESS_SINCE:
        entry.set_editor_property("use_lossless_compression", True)
    return entry


def build_job(queue, sequence, map_path: str, output_dir: str, pass_materials: dict, resolution: tuple[int, int] | None, version: tuple[int, int]):
    """A job in ``queue`` rendering ``sequence`` to ``output_dir`` with colour, depth and normal layers."""
    job = queue.allocate_new_job(unreal.MoviePipelineExecutorJob)
    job.set_editor_property("job_name", f"Coarse2Real {sequence.get_name()}")
    job.set_editor_property("sequence", unreal.SoftObjectPath(sequence.get_path_name()))
    job.set_editor_property("map", unreal.SoftObjectPath(map_path))
    config = job.get_configuration()

    output = config.find_or_add_setting_by_class(unreal.MoviePipelineOutputSetting)
    output.set_editor_property("output_directory", unreal.DirectoryPath(output_dir))
    output.set_editor_property("file_name_format", FILE_NAME_FORMAT)
    output.set_editor_property("zero_pad_frame_numbers", FRAME_DIGITS)
    output.set_editor_property("override_existing_output", True)
    if resolution is not None:
        output.set_editor_property("output_resolution", unreal.IntPoint(*resolution))

    deferred = config.find_or_add_setting_by_class(unreal.MoviePipelineDeferredPassBase)
    deferred.set_editor_property("disable_multisample_effects", True)
    deferred.set_editor_property("additional_post_process_materials", [_post_process_pass(m, version) for m in pass_materials.values()])

    exr = config.find_or_add_setting_by_class(unreal.MoviePipelineImageSequenceOutput_EXR)
    exr.set_editor_property("multilayer", True)
    exr.set_editor_property("compression", unreal.EXRCompressionFormat.ZIP)
    for name in OTHER_IMAGE_OUTPUTS:  # a default job may carry an 8-bit output we do not read
        setting = config.find_setting_by_class(getattr(unreal, name))
        if setting is not None:
            config.remove_setting(setting)
    return job


class QueueRender:
    """Our job rendered by the editor's MRQ queue; ``on_finished(success)`` runs on the game thread."""

    def __init__(self, sequence, map_path: str, output_dir: str, pass_materials: dict, resolution, on_finished):
        self.subsystem = unreal.get_editor_subsystem(unreal.MoviePipelineQueueSubsystem)
        if self.subsystem.is_rendering():
            raise RuntimeError("Movie Render Queue is already rendering: wait for that render to finish (or cancel it), then press Realify again")
        version = engine_version()
        if version < HIGH_PRECISION_SINCE:
            unreal.log_warning(f"Coarse2Real: UE {version[0]}.{version[1]} writes post-process passes as 16-bit floats: depth beyond 655 m reads as sky")
        self.queue = self.subsystem.get_queue()
        self.job = build_job(self.queue, sequence, map_path, output_dir, pass_materials, resolution, version)
        self.paused = [j for j in self.queue.get_jobs() if j != self.job and j.is_enabled()]
        for job in self.paused:
            job.set_is_enabled(False)
        self._on_finished = on_finished
        self.executor = unreal.MoviePipelinePIEExecutor()
        self.executor.on_executor_finished_delegate.add_callable_unique(self._finished)
        try:
            self.subsystem.render_queue_with_executor_instance(self.executor)
        except Exception:
            self._restore_queue()
            raise

    def _restore_queue(self) -> None:
        for job in self.paused:  # the user's queue as it was
            job.set_is_enabled(True)
        self.queue.delete_job(self.job)

    def _finished(self, _executor, success: bool) -> None:
        self._restore_queue()
        self._on_finished(bool(success))

    def cancel(self) -> None:
        self.executor.cancel_all_jobs()
