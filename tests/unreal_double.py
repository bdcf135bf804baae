"""A test double of Unreal Editor's ``unreal`` module: just the API the Coarse2Real plugin calls.

``UnrealModuleDouble`` is installed as ``sys.modules["unreal"]`` by the tests. Objects
record the properties set on them and the calls made, so a test can read back exactly the
MRQ job, materials and menus the plugin built. Enum members and classes exist only where
the plugin uses them (names as Unreal's Python exposes them), so a misspelt one fails.
"""

from __future__ import annotations

import types

import numpy as np


class ObjectDouble:
    """A UObject/struct: editor properties in a dict, unknown reads fail like Unreal's do."""

    def __init__(self, *args, **kwargs):
        self.props: dict = dict(kwargs)
        self.args = args

    def set_editor_property(self, name, value):
        self.props[name] = value

    def get_editor_property(self, name):
        if name not in self.props:
            raise AttributeError(f"{type(self).__name__} has no editor property {name!r} set in this double")
        return self.props[name]


def enum_double(name: str, members: list[str]) -> type:
    return type(name, (), {m: f"{name}.{m}" for m in members})


class DelegateDouble:
    def __init__(self):
        self.callables = []

    def add_callable_unique(self, fn):
        if fn not in self.callables:
            self.callables.append(fn)

    def broadcast(self, *args):
        for fn in list(self.callables):
            fn(*args)


class MaterialDouble(ObjectDouble):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.expressions: list = []
        self.links: list = []  # (from expression, from pin, to expression or property, to pin)
        self.compiled = False


class MaterialEditingLibraryDouble:
    @staticmethod
    def create_material_expression(material, expression_class, x, y):
        node = expression_class()
        material.expressions.append(node)
        node.material = material
        return node

    @staticmethod
    def connect_material_expressions(source, source_pin, target, target_pin):
        source.material.links.append((source, source_pin, target, target_pin))
        return True

    @staticmethod
    def connect_material_property(source, source_pin, material_property):
        source.material.links.append((source, source_pin, material_property, ""))
        return True

    @staticmethod
    def recompile_material(material):
        material.compiled = True


class MoviePipelineConfigDouble(ObjectDouble):
    def __init__(self):
        super().__init__()
        self.settings: list = []

    def find_or_add_setting_by_class(self, cls):
        return self.find_setting_by_class(cls) or self._add(cls)

    def _add(self, cls):
        setting = cls()
        self.settings.append(setting)
        return setting

    def find_setting_by_class(self, cls):
        return next((s for s in self.settings if type(s) is cls), None)

    def remove_setting(self, setting):
        self.settings.remove(setting)


class MoviePipelineExecutorJobDouble(ObjectDouble):
    def __init__(self):
        super().__init__()
        self.configuration = MoviePipelineConfigDouble()

    def get_configuration(self):
        return self.configuration


class MoviePipelineQueueDouble(ObjectDouble):
    def __init__(self):
        super().__init__()
        self.jobs: list = []

    def allocate_new_job(self, job_class):
        job = job_class()
        self.jobs.append(job)
        return job


class MoviePipelinePIEExecutorDouble(ObjectDouble):
    def __init__(self):
        super().__init__()
        self.on_executor_finished_delegate = DelegateDouble()
        self.executed: list = []
        self.cancelled = False

    def execute(self, queue):
        self.executed.append(queue)

    def cancel_all_jobs(self):
        self.cancelled = True

    def finish(self, success: bool):
        """What MRQ does when the render ends (test helper)."""
        self.on_executor_finished_delegate.broadcast(self, success)


class ScopedSlowTaskDouble:
    """Cancels once ``cancel_after`` progress checks have passed (None: never)."""

    cancel_after: int | None = None
    instances: list = []

    def __init__(self, work, description=""):
        self.work, self.description = work, description
        self.progress: list = []
        self.checks = 0
        self.dialog = None
        ScopedSlowTaskDouble.instances.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def make_dialog(self, can_cancel=False):
        self.dialog = can_cancel

    def should_cancel(self):
        self.checks += 1
        return self.cancel_after is not None and self.checks > self.cancel_after

    def enter_progress_frame(self, work=1.0, description=""):
        self.progress.append((work, description))


class AssetRegistryDouble:
    """EditorAssetLibrary + AssetTools over one dict of path -> asset."""

    def __init__(self):
        self.assets: dict = {}
        self.saved: list = []

    def does_asset_exist(self, path):
        return path in self.assets

    def load_asset(self, path):
        return self.assets[path]

    def save_loaded_asset(self, asset):
        self.saved.append(asset)
        return True

    def create_asset(self, name, folder, asset_class, factory):
        asset = asset_class()
        asset.props["name"] = name
        self.assets[f"{folder}/{name}"] = asset
        return asset


class ToolMenuDouble(ObjectDouble):
    def __init__(self, name=""):
        super().__init__()
        self.name = name
        self.entries: list = []  # (section, entry)
        self.submenus: dict = {}

    def add_sub_menu(self, owner, section, name, label, tooltip=""):
        menu = self.submenus.setdefault(name, ToolMenuDouble(name))
        menu.props.update(label=label, tooltip=tooltip, section=section)
        return menu

    def add_menu_entry(self, section, entry):
        self.entries.append((section, entry))


class ToolMenusDouble:
    def __init__(self):
        self.menus: dict = {}
        self.refreshed = 0

    def find_menu(self, name):
        return self.menus.setdefault(name, ToolMenuDouble(name))

    extend_menu = find_menu

    def refresh_all_widgets(self):
        self.refreshed += 1


class ToolMenuEntryDouble(ObjectDouble):
    def set_label(self, label):
        self.props["label"] = label

    def set_tool_tip(self, tooltip):
        self.props["tooltip"] = tooltip

    def set_string_command(self, kind, custom_type, string):
        self.props["command"] = (kind, string)


class SceneCaptureDouble(ObjectDouble):
    """A SceneCapture2D actor whose component "renders" through ``render(pass material)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        component = ObjectDouble(post_process_settings=ObjectDouble(weighted_blendables=None))
        component.capture_scene = lambda: component.props.__setitem__("captures", component.props.get("captures", 0) + 1)
        self.props["capture_component2d"] = component


class RenderingLibraryDouble:
    """Render targets, and an export that writes what ``render(material)`` draws as an EXR file."""

    def __init__(self, render):
        self.render = render  # (material or None) -> (H, W, 3) float32 for the current frame
        self.exported: list = []
        self.capture = None

    def create_render_target2d(self, world, width, height, fmt):
        return ObjectDouble(width=width, height=height, format=fmt)

    def export_render_target(self, world, target, folder, name):
        import os

        import numpy as np
        import OpenEXR

        blendables = self.capture.props["post_process_settings"].props["weighted_blendables"]
        material = blendables.args[0][0].args[1] if blendables.args[0] else None
        rgb = self.render(material)
        channels = {c: np.ascontiguousarray(rgb[..., i], np.float32) for i, c in enumerate("RGB")}
        path = os.path.join(folder, name)
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(path)
        self.exported.append(path)


class UnrealModuleDouble(types.ModuleType):
    """The ``unreal`` module as the plugin sees it."""

    def __init__(self):
        super().__init__("unreal")
        self.logs: list = []
        registry = AssetRegistryDouble()
        self.registry = registry
        self.tool_menus = ToolMenusDouble()
        self.subsystems: dict = {}
        self.current_sequence = None

        plain = lambda name: type(name, (ObjectDouble,), {})  # noqa: E731
        for name in (
            "MoviePipelineOutputSetting", "MoviePipelineDeferredPassBase", "MoviePipelineImageSequenceOutput_EXR",
            "MoviePipelineImageSequenceOutput_JPG", "MoviePipelineImageSequenceOutput_PNG", "MoviePipelineImageSequenceOutput_BMP",
            "MaterialFactoryNew", "MaterialExpressionSceneTexture", "MaterialExpressionComponentMask", "MaterialExpressionTransform",
            "MaterialExpressionMultiply", "MaterialExpressionAdd", "DirectoryPath", "SoftObjectPath", "IntPoint", "ImgMediaSource",
            "FrameRate", "LevelSequence", "MoviePipelineQueueSubsystem", "UnrealEditorSubsystem", "AssetEditorSubsystem",
            "EditorActorSubsystem",
        ):  # fmt: skip
            setattr(self, name, plain(name))
        self.SceneCapture2D = SceneCaptureDouble
        self.WeightedBlendables = type("WeightedBlendables", (ObjectDouble,), {})
        self.WeightedBlendable = type("WeightedBlendable", (ObjectDouble,), {})
        self.RenderingLibrary = RenderingLibraryDouble(lambda material: np.zeros((2, 2, 3), np.float32))
        self.sequencer_time: list = []
        self.ImgMediaSource.set_sequence_path = lambda source, path: source.props.__setitem__("sequence_path", path)
        self.AssetEditorSubsystem.open_editor_for_assets = lambda subsystem, assets: subsystem.props.setdefault("opened", []).extend(assets)
        self.Material = MaterialDouble
        self.MoviePipelineQueue = MoviePipelineQueueDouble
        self.MoviePipelineExecutorJob = MoviePipelineExecutorJobDouble
        self.MoviePipelinePIEExecutor = MoviePipelinePIEExecutorDouble
        self.ToolMenuEntry = ToolMenuEntryDouble
        self.ScopedSlowTask = ScopedSlowTaskDouble

        class _PostProcessPass(ObjectDouble):
            """UE 5.5 has the precision flags; the double accepts exactly its fields."""

            FIELDS = ("enabled", "material", "name", "high_precision_output", "use_lossless_compression")

            def set_editor_property(self, name, value):
                if name not in self.FIELDS:
                    raise AttributeError(f"MoviePipelinePostProcessPass has no property {name!r}")
                super().set_editor_property(name, value)

        self.MoviePipelinePostProcessPass = _PostProcessPass
        self.MaterialEditingLibrary = MaterialEditingLibraryDouble
        self.EditorAssetLibrary = registry
        self.AssetToolsHelpers = types.SimpleNamespace(get_asset_tools=lambda: registry)
        self.ToolMenus = types.SimpleNamespace(get=lambda: self.tool_menus)
        self.LevelSequenceEditorBlueprintLibrary = types.SimpleNamespace(
            get_current_level_sequence=lambda: self.current_sequence, set_current_time=self.sequencer_time.append
        )
        self.EditorUtilityLibrary = types.SimpleNamespace(get_selected_assets=lambda: [])
        self.EditorDialog = types.SimpleNamespace(show_message=lambda title, message, kind: self.logs.append(("dialog", message)))

        self.MaterialDomain = enum_double("MaterialDomain", ["MD_SURFACE", "MD_POST_PROCESS"])
        self.BlendableLocation = enum_double("BlendableLocation", ["BL_SCENE_COLOR_AFTER_TONEMAPPING", "BL_SCENE_COLOR_BEFORE_DOF"])
        self.SceneTextureId = enum_double("SceneTextureId", ["PPI_SCENE_COLOR", "PPI_SCENE_DEPTH", "PPI_WORLD_NORMAL"])
        self.MaterialProperty = enum_double("MaterialProperty", ["MP_EMISSIVE_COLOR", "MP_BASE_COLOR"])
        self.MaterialVectorCoordTransformSource = enum_double("MaterialVectorCoordTransformSource", ["TRANSFORMSOURCE_WORLD", "TRANSFORMSOURCE_VIEW"])
        self.MaterialVectorCoordTransform = enum_double("MaterialVectorCoordTransform", ["TRANSFORM_WORLD", "TRANSFORM_VIEW"])
        self.EXRCompressionFormat = enum_double("EXRCompressionFormat", ["NONE", "PIZ", "ZIP", "DWAA"])
        self.MultiBlockType = enum_double("MultiBlockType", ["MENU_ENTRY", "TOOL_BAR_BUTTON"])
        self.ToolMenuStringCommandType = enum_double("ToolMenuStringCommandType", ["COMMAND", "PYTHON"])
        self.AppMsgType = enum_double("AppMsgType", ["OK"])
        self.TextureRenderTargetFormat = enum_double("TextureRenderTargetFormat", ["RTF_RGBA16F", "RTF_RGBA32F"])
        self.SceneCaptureSource = enum_double("SceneCaptureSource", ["SCS_FINAL_COLOR_LDR", "SCS_FINAL_TONE_CURVE_HDR"])

    # ---------------------------------------------------------------- functions

    def new_object(self, cls, outer=None, name=""):
        return cls()

    def get_editor_subsystem(self, cls):
        if cls not in self.subsystems:
            subsystem = cls()
            if cls is self.UnrealEditorSubsystem:
                world = types.SimpleNamespace(get_path_name=lambda: "/Game/Maps/Street.Street")
                subsystem.get_editor_world = lambda: world
                subsystem.get_level_viewport_camera_info = lambda: ("location", "rotation")
            if cls is self.EditorActorSubsystem:
                subsystem.spawned, subsystem.destroyed = [], []

                def spawn(actor_class, location, rotation):
                    actor = actor_class()
                    subsystem.spawned.append(actor)
                    self.RenderingLibrary.capture = actor.props["capture_component2d"]
                    return actor

                subsystem.spawn_actor_from_class = spawn
                subsystem.destroy_actor = subsystem.destroyed.append
            self.subsystems[cls] = subsystem
        return self.subsystems[cls]

    def get_interpreter_executable_path(self):
        return "/engine/python3"

    def log(self, message):
        self.logs.append(("log", message))

    def log_warning(self, message):
        self.logs.append(("warning", message))

    def log_error(self, message):
        self.logs.append(("error", message))


class LevelSequenceDouble:
    """A Level Sequence asset: a name, a path and a playback range in display-rate frames."""

    def __init__(self, name: str, start: int, end: int):
        self.name, self.start, self.end = name, start, end

    def get_name(self):
        return self.name

    def get_path_name(self):
        return f"/Game/Cinematics/{self.name}.{self.name}"

    def get_playback_start(self):
        return self.start

    def get_playback_end(self):
        return self.end


def install_unreal_double() -> UnrealModuleDouble:
    """Make ``import unreal`` give a fresh double, and drop the plugin's editor modules bound to an older one."""
    import sys

    double = UnrealModuleDouble()
    sys.modules["unreal"] = double
    for name in [m for m in sys.modules if m.startswith("coarse2real_unreal.unreal_")]:
        del sys.modules[name]
    ScopedSlowTaskDouble.cancel_after = None
    ScopedSlowTaskDouble.instances = []
    return double
