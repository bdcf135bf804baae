"""A Movie Render Queue job that writes everything the daemon needs, one EXR per frame.

Settings and why:
* deferred pass with the two additional post-process materials (depth, view normal) at
  32-bit with lossless compression where the engine has those switches (UE 5.5+); multisample
  effects off so the passes line up pixel for pixel with the colour (no TAA jitter, DoF, blur);
* EXR output, multilayer, ZIP compression: one file per frame, the colour as the unnamed
  layer and each pass as a named layer, lossless;
* file name ``{sequence_name}.{frame_number}``, 4-digit padding, overwrite on: the names
  ``mrq_files`` maps back to frame indices.
The job lives in a queue of its own so the user's MRQ queue is left alone.
"""

from __future__ import annotations

import unreal

FILE_NAME_FORMAT = "{sequence_name}.{frame_number}"
FRAME_DIGITS = 4
OTHER_IMAGE_OUTPUTS = ("MoviePipelineImageSequenceOutput_JPG", "MoviePipelineImageSequenceOutput_PNG", "MoviePipelineImageSequenceOutput_BMP")


def _post_process_pass(material):
    entry = unreal.MoviePipelinePostProcessPass()
    entry.set_editor_property("enabled", True)
    entry.set_editor_property("material", material)
    for flag in ("high_precision_output", "use_lossless_compression"):  # UE 5.5+ only
        try:
            entry.set_editor_property(flag, True)
        except Exception:  # noqa: BLE001 - older engines lack the flag; depth then travels as half float
            unreal.log_warning(f"Coarse2Real: this engine has no MoviePipelinePostProcessPass.{flag}; passes stay 16-bit")
    return entry


def build_job(sequence, map_path: str, output_dir: str, pass_materials: dict, resolution: tuple[int, int] | None = None):
    """(queue, job) rendering ``sequence`` to ``output_dir`` with colour, depth and normal layers."""
    queue = unreal.new_object(unreal.MoviePipelineQueue)
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
    deferred.set_editor_property("additional_post_process_materials", [_post_process_pass(m) for m in pass_materials.values()])

    exr = config.find_or_add_setting_by_class(unreal.MoviePipelineImageSequenceOutput_EXR)
    exr.set_editor_property("multilayer", True)
    exr.set_editor_property("compression", unreal.EXRCompressionFormat.ZIP)
    for name in OTHER_IMAGE_OUTPUTS:  # a default job may carry an 8-bit output we do not read
        setting = config.find_setting_by_class(getattr(unreal, name))
        if setting is not None:
            config.remove_setting(setting)
    return queue, job


def render(queue, on_finished):
    """Render ``queue`` in Play-In-Editor; ``on_finished(success: bool)`` runs on the game thread."""
    executor = unreal.MoviePipelinePIEExecutor()
    executor.on_executor_finished_delegate.add_callable_unique(lambda _executor, success: on_finished(bool(success)))
    executor.execute(queue)
    return executor
