"""A test double of Unreal Editor's ``unreal`` module, built from the engine's published Python API.

``UnrealModuleDouble`` is installed as ``sys.modules["unreal"]`` by the tests. It holds only the
classes, functions, editor properties and enum members listed in ``API`` and ``ENUMS`` below, each
read from Epic's Python API reference (the page is named per entry, with the engine version the
list was read from) or from engine source where a behaviour matters. Anything else raises, as the
real module does: an unknown class or function is an ``AttributeError`` on the module, an unknown
editor property an ``AttributeError`` from ``set_editor_property``/``get_editor_property`` naming
the page the allowed list came from, an unknown enum member an ``AttributeError`` on the enum.
Objects record what was set and called, so tests read back the job, materials and menus built.

The game thread rule is enforced too: UObjects and the editor are game-thread only, so Python running
on another thread must hand its ``unreal`` calls to the game thread (Epic's own editor RPC server does
exactly that: github.com/EpicGames/BlenderTools, send2ue/dependencies/rpc/unreal_server.py,
``UnrealRPCServerThread.thread_safe_call`` -> ``run_in_main_thread``, drained from
``register_slate_post_tick_callback``). Here any ``unreal.<name>`` read from a thread other than the
one that made the double (the test's, standing for the game thread) raises ``RuntimeError`` naming it.
"""

from __future__ import annotations

import itertools
import os
import threading
import types

import numpy as np

DOCS = "https://dev.epicgames.com/documentation/en-us/unreal-engine/python-api/class/{}?application_version={}"


def page(name: str, version: str = "5.4") -> str:
    return DOCS.format(name, version)


# ---------------------------------------------------------------- the allowed names, with their sources

# class name -> (editor properties, source). Methods are the ones each double class defines.
PROPERTIES = {
    "MoviePipelineOutputSetting": ({
        "output_directory", "file_name_format", "zero_pad_frame_numbers", "override_existing_output", "output_resolution",
        "use_custom_playback_range", "custom_start_frame", "custom_end_frame", "handle_frame_count", "output_frame_step",
        "use_custom_frame_rate", "output_frame_rate", "frame_number_offset", "auto_version", "version_number",
        "flush_disk_writes_per_shot"}, page("MoviePipelineOutputSetting")),
    "MoviePipelineDeferredPassBase": ({
        "additional_post_process_materials", "disable_multisample_effects", "render_main_pass", "add_default_layer",
        "accumulator_includes_alpha"}, page("MoviePipelineDeferredPassBase")),
    "MoviePipelineImageSequenceOutput_EXR": ({"compression", "multilayer"}, page("MoviePipelineImageSequenceOutput_EXR")),
    "MoviePipelineImageSequenceOutput_JPG": (set(), page("MoviePipelineImageSequenceOutput_JPG")),
    "MoviePipelineImageSequenceOutput_PNG": (set(), page("MoviePipelineImageSequenceOutput_PNG")),
    "MoviePipelineImageSequenceOutput_BMP": (set(), page("MoviePipelineImageSequenceOutput_BMP")),
    "MoviePipelineExecutorJob": ({"job_name", "sequence", "map", "author", "comment"}, page("MoviePipelineExecutorJob")),
    "MoviePipelineQueue": (set(), page("MoviePipelineQueue")),
    "MoviePipelinePIEExecutor": ({"on_executor_finished_delegate"}, page("MoviePipelinePIEExecutor")),
    "MoviePipelineQueueSubsystem": (set(), page("MoviePipelineQueueSubsystem", "5.7")),
    "Material": ({"material_domain", "blendable_location", "blend_mode", "two_sided", "shading_model"}, page("Material")),
    "MaterialFactoryNew": (set(), page("MaterialFactoryNew")),
    "MaterialExpressionSceneTexture": ({"scene_texture_id", "filtered"}, page("MaterialExpressionSceneTexture")),
    "MaterialExpressionComponentMask": ({"r", "g", "b", "a"}, page("MaterialExpressionComponentMask")),
    "MaterialExpressionTransform": ({"transform_source_type", "transform_type"}, page("MaterialExpressionTransform")),
    "MaterialExpressionMultiply": ({"const_a", "const_b"}, page("MaterialExpressionMultiply")),
    "MaterialExpressionAdd": ({"const_a", "const_b"}, page("MaterialExpressionAdd")),
    "SceneCapture2D": ({"capture_component2d"}, page("SceneCapture2D")),
    "SceneCaptureComponent2D": ({"texture_target", "capture_source", "post_process_settings", "post_process_blend_weight",
                                 "capture_every_frame", "capture_on_movement"}, page("SceneCaptureComponent2D")),  # fmt: skip
    "PostProcessSettings": ({"weighted_blendables"}, page("PostProcessSettings")),
    "ImgMediaSource": ({"fill_gaps_in_sequence", "frame_rate_override", "proxy_override", "platform_player_names"}, page("ImgMediaSource", "5.7")),
    "ImgMediaSourceFactoryNew": (set(), page("ImgMediaSourceFactoryNew")),
    "MediaPlayer": ({"play_on_open", "shuffle", "horizontal_field_of_view", "vertical_field_of_view", "native_audio_out"}, page("MediaPlayer")),
    "MediaPlayerFactoryNew": (set(), page("MediaPlayerFactoryNew")),
    "TextureRenderTarget2D": ({"render_target_format", "clear_color", "auto_generate_mips"}, page("TextureRenderTarget2D")),
    "TextureRenderTargetFactoryNew": (set(), page("TextureRenderTargetFactoryNew")),
    "Texture2D": (set(), page("Texture2D")),
    "LevelSequence": (set(), page("LevelSequence")),
    "UnrealEditorSubsystem": (set(), page("UnrealEditorSubsystem")),
    "AssetEditorSubsystem": (set(), page("AssetEditorSubsystem")),
    "EditorActorSubsystem": (set(), page("EditorActorSubsystem")),
    "ToolMenu": (set(), page("ToolMenu")),
    "ToolMenuEntry": ({"name", "type", "owner"}, page("ToolMenuEntry")),
}  # fmt: skip

# MoviePipelinePostProcessPass's fields by engine version (the struct's constructor signature on each page).
POST_PROCESS_PASS_FIELDS = {
    (5, 4): {"enabled", "material"},
    (5, 5): {"enabled", "material", "name", "high_precision_output"},
    (5, 6): {"enabled", "material", "name", "high_precision_output"},
    (5, 7): {"enabled", "material", "name", "high_precision_output", "use_lossless_compression"},
}
POST_PROCESS_PASS_SOURCE = page("MoviePipelinePostProcessPass", "5.4 / 5.5 / 5.7")

ENUMS = {
    "TextureRenderTargetFormat": (["RTF_R8", "RTF_RG8", "RTF_RGBA8", "RTF_RGBA8_SRGB", "RTF_R16F", "RTF_RG16F", "RTF_RGBA16F",
                                   "RTF_R32F", "RTF_RG32F", "RTF_RGBA32F", "RTF_RGB10A2"], page("TextureRenderTargetFormat", "5.1")),
    "EXRCompressionFormat": (["NONE", "PIZ", "ZIP", "DWAA", "DWAB"], page("EXRCompressionFormat", "5.3")),
    "SceneCaptureSource": (["SCS_SCENE_COLOR_HDR", "SCS_SCENE_COLOR_HDR_NO_ALPHA", "SCS_FINAL_COLOR_LDR", "SCS_SCENE_COLOR_SCENE_DEPTH",
                            "SCS_SCENE_DEPTH", "SCS_DEVICE_DEPTH", "SCS_NORMAL", "SCS_BASE_COLOR", "SCS_FINAL_COLOR_HDR",
                            "SCS_FINAL_TONE_CURVE_HDR"], page("SceneCaptureSource")),
    "MaterialDomain": (["MD_SURFACE", "MD_DEFERRED_DECAL", "MD_LIGHT_FUNCTION", "MD_VOLUME", "MD_POST_PROCESS", "MD_UI",
                        "MD_RUNTIME_VIRTUAL_TEXTURE"], page("MaterialDomain")),
    "BlendableLocation": (["BL_SCENE_COLOR_AFTER_DOF", "BL_TRANSLUCENCY_AFTER_DOF", "BL_SSR_INPUT", "BL_SCENE_COLOR_BEFORE_DOF",
                           "BL_SCENE_COLOR_AFTER_TONEMAPPING", "BL_REPLACING_TONEMAPPER"], page("BlendableLocation")),
    "SceneTextureId": (["PPI_SCENE_COLOR", "PPI_SCENE_DEPTH", "PPI_DIFFUSE_COLOR", "PPI_SPECULAR_COLOR", "PPI_SUBSURFACE_COLOR",
                        "PPI_BASE_COLOR", "PPI_SPECULAR", "PPI_METALLIC", "PPI_WORLD_NORMAL", "PPI_SEPARATE_TRANSLUCENCY",
                        "PPI_OPACITY", "PPI_ROUGHNESS", "PPI_MATERIAL_AO", "PPI_CUSTOM_DEPTH", "PPI_POST_PROCESS_INPUT0",
                        "PPI_DECAL_MASK", "PPI_SHADING_MODEL", "PPI_AMBIENT_OCCLUSION", "PPI_CUSTOM_STENCIL", "PPI_VELOCITY"],
                       page("SceneTextureId")),
    "MaterialProperty": (["MP_EMISSIVE_COLOR", "MP_OPACITY", "MP_OPACITY_MASK", "MP_DIFFUSE_COLOR", "MP_SPECULAR_COLOR",
                          "MP_BASE_COLOR", "MP_METALLIC", "MP_SPECULAR", "MP_ROUGHNESS", "MP_ANISOTROPY", "MP_NORMAL",
                          "MP_TANGENT", "MP_WORLD_POSITION_OFFSET", "MP_AMBIENT_OCCLUSION", "MP_REFRACTION"], page("MaterialProperty")),
    "MaterialVectorCoordTransformSource": (["TRANSFORMSOURCE_TANGENT", "TRANSFORMSOURCE_LOCAL", "TRANSFORMSOURCE_WORLD",
                                            "TRANSFORMSOURCE_VIEW", "TRANSFORMSOURCE_CAMERA", "TRANSFORMSOURCE_PARTICLE",
                                            "TRANSFORMSOURCE_INSTANCE"], page("MaterialVectorCoordTransformSource")),
    "MaterialVectorCoordTransform": (["TRANSFORM_TANGENT", "TRANSFORM_LOCAL", "TRANSFORM_WORLD", "TRANSFORM_VIEW",
                                      "TRANSFORM_CAMERA", "TRANSFORM_PARTICLE", "TRANSFORM_INSTANCE"], page("MaterialVectorCoordTransform")),
    "MultiBlockType": (["NONE", "BUTTON_ROW", "EDITABLE_TEXT", "HEADING", "MENU_ENTRY", "SEPARATOR", "TOOL_BAR_BUTTON",
                        "TOOL_BAR_COMBO_BUTTON", "WIDGET"], page("MultiBlockType")),
    "ToolMenuStringCommandType": (["COMMAND", "PYTHON", "CUSTOM"], page("ToolMenuStringCommandType")),
    "AppMsgType": (["OK", "YES_NO", "OK_CANCEL", "YES_NO_CANCEL", "CANCEL_RETRY_CONTINUE", "YES_NO_YES_ALL_NO_ALL",
                    "YES_NO_YES_ALL_NO_ALL_CANCEL", "YES_NO_YES_ALL"], page("AppMsgType")),
}  # fmt: skip


# ---------------------------------------------------------------- objects


class ObjectDouble:
    """A UObject/struct: editor properties limited to the class's published list; reads of unset ones fail."""

    ALLOWED: set = set()
    SOURCE = ""

    def __init__(self, *args, **kwargs):
        self.props: dict = {}
        self.args = args
        for name, value in kwargs.items():
            self.set_editor_property(name, value)

    def _check(self, name):
        if name not in self.ALLOWED:
            raise AttributeError(f"{type(self).__name__} has no editor property {name!r} (allowed: {sorted(self.ALLOWED)}; {self.SOURCE})")

    def set_editor_property(self, name, value):
        self._check(name)
        self.props[name] = value

    def get_editor_property(self, name):
        self._check(name)
        if name not in self.props:
            raise AttributeError(f"{type(self).__name__}.{name} was never set in this test")
        return self.props[name]


def object_class(name: str, base: type = ObjectDouble, **methods) -> type:
    allowed, source = PROPERTIES[name]
    return type(name, (base,), {"ALLOWED": set(allowed), "SOURCE": source, **methods})


def enum_double(name: str) -> type:
    members, source = ENUMS[name]
    return type(name, (), {"SOURCE": source, **{m: f"{name}.{m}" for m in members}})


class DelegateDouble:
    def __init__(self):
        self.callables = []

    def add_callable_unique(self, fn):
        if fn not in self.callables:
            self.callables.append(fn)

    def broadcast(self, *args):
        for fn in list(self.callables):
            fn(*args)


class UPropertyDouble:
    def __init__(self, kind, meta=None):
        self.kind, self.meta = kind, meta or {}


class UValueDouble:
    def __init__(self, value, meta=None):
        self.value, self.meta = value, meta or {}


class PythonObjectDouble(ObjectDouble):
    """``unreal.Object`` for Python-defined classes: the editor properties are the class's ``uproperty`` fields."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.FIELDS = {k: v for k, v in vars(cls).items() if isinstance(v, UPropertyDouble)}
        cls.ALLOWED = set(cls.FIELDS)
        cls.SOURCE = f"the uproperty fields of {cls.__name__}"

    def __init__(self):
        super().__init__()
        defaults = {str: "", int: 0, bool: False, float: 0.0}
        for name, field in self.FIELDS.items():  # Unreal default-initialises every property
            self.props[name] = defaults[field.kind] if field.kind in defaults else field.kind.MEMBERS[0]


class EnumBaseDouble:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.MEMBERS = [v for v in vars(cls).values() if isinstance(v, UValueDouble)]


# ---------------------------------------------------------------- the module


class UnrealModuleDouble(types.ModuleType):
    """The ``unreal`` module as the plugin sees it, for one engine version (default 5.7)."""

    def __init__(self, engine_version: tuple[int, int] = (5, 7)):
        super().__init__("unreal")
        object.__setattr__(self, "game_thread", threading.get_ident())  # the thread that made the double: the test's
        self.engine_version = engine_version
        self.logs: list = []
        self.assets: dict = {}
        self.saved: list = []
        self.post_tick: dict = {}
        self._handles = itertools.count(1)
        self.subsystems: dict = {}
        self.current_sequence = None
        self.sequencer_time: list = []
        self.selected_assets: list = []
        self.menus: dict = {}
        self.refreshed = 0
        self.details_dialog = lambda obj: True  # what the user does in a details dialog: edit obj, then OK (True)
        self.saved_dir = "/project/Saved"
        self.render = lambda material: np.zeros((2, 2, 3), np.float32)  # what a scene capture draws through a pass material
        self.exported: list = []
        self.drawn: list = []  # (render target, texture) the live preview drew
        self._build_classes()
        for name in ENUMS:
            setattr(self, name, enum_double(name))
        self.Object = PythonObjectDouble
        self.EnumBase = EnumBaseDouble
        self._build_libraries()

    def __getattribute__(self, name):
        if not name.startswith("__") and threading.get_ident() != object.__getattribute__(self, "game_thread"):
            raise RuntimeError(f"unreal.{name} used from thread {threading.current_thread().name!r}: the editor's API is game thread only")
        return super().__getattribute__(name)

    # ------------------------------------------------------------ classes

    def _build_classes(self):
        module = self
        for name in ("MoviePipelineOutputSetting", "MoviePipelineDeferredPassBase", "MoviePipelineImageSequenceOutput_EXR",
                     "MoviePipelineImageSequenceOutput_JPG", "MoviePipelineImageSequenceOutput_PNG", "MoviePipelineImageSequenceOutput_BMP",
                     "MaterialFactoryNew", "MaterialExpressionSceneTexture", "MaterialExpressionComponentMask", "MaterialExpressionTransform",
                     "MaterialExpressionMultiply", "MaterialExpressionAdd", "ImgMediaSourceFactoryNew", "MediaPlayerFactoryNew",
                     "TextureRenderTargetFactoryNew", "PostProcessSettings", "Texture2D"):  # fmt: skip
            setattr(self, name, object_class(name))

        fields = POST_PROCESS_PASS_FIELDS[self.engine_version]
        self.MoviePipelinePostProcessPass = type("MoviePipelinePostProcessPass", (ObjectDouble,), {"ALLOWED": fields, "SOURCE": POST_PROCESS_PASS_SOURCE})

        class Config(ObjectDouble):  # MoviePipelinePrimaryConfig: settings by class
            def __init__(self):
                super().__init__()
                self.settings: list = []

            def find_or_add_setting_by_class(self, cls):
                found = self.find_setting_by_class(cls)
                if found is None:
                    found = cls()
                    self.settings.append(found)
                return found

            def find_setting_by_class(self, cls):
                return next((s for s in self.settings if type(s) is cls), None)

            def remove_setting(self, setting):
                self.settings.remove(setting)

        def job_init(job):
            ObjectDouble.__init__(job)
            job.configuration, job.enabled = Config(), True

        self.MoviePipelineExecutorJob = object_class(
            "MoviePipelineExecutorJob", __init__=job_init, get_configuration=lambda job: job.configuration,
            is_enabled=lambda job: job.enabled, set_is_enabled=lambda job, value: setattr(job, "enabled", bool(value)),
        )  # fmt: skip

        def queue_init(queue):
            ObjectDouble.__init__(queue)
            queue.jobs = []

        def allocate(queue, job_class):
            queue.jobs.append(job_class())
            return queue.jobs[-1]

        self.MoviePipelineQueue = object_class("MoviePipelineQueue", __init__=queue_init, allocate_new_job=allocate,
                                               get_jobs=lambda queue: list(queue.jobs), delete_job=lambda queue, job: queue.jobs.remove(job))  # fmt: skip

        def executor_init(executor):
            ObjectDouble.__init__(executor)
            executor.on_executor_finished_delegate = DelegateDouble()
            executor.cancelled = False

        def finish(executor, success):
            """What MRQ does when the render ends (a test helper, not the API)."""
            module.subsystem(module.MoviePipelineQueueSubsystem).active = None
            executor.on_executor_finished_delegate.broadcast(executor, success)

        self.MoviePipelinePIEExecutor = object_class("MoviePipelinePIEExecutor", __init__=executor_init,
                                                     cancel_all_jobs=lambda e: setattr(e, "cancelled", True), finish=finish)  # fmt: skip

        def subsystem_init(subsystem):
            ObjectDouble.__init__(subsystem)
            subsystem.queue, subsystem.active = module.MoviePipelineQueue(), None

        def render_with(subsystem, executor):
            if subsystem.active is not None:
                raise RuntimeError("MoviePipelineQueueSubsystem: a render is already in progress")
            subsystem.active = executor

        self.MoviePipelineQueueSubsystem = object_class(
            "MoviePipelineQueueSubsystem", __init__=subsystem_init, get_queue=lambda s: s.queue, is_rendering=lambda s: s.active is not None,
            get_active_executor=lambda s: s.active, render_queue_with_executor_instance=render_with,
        )  # fmt: skip

        def material_init(material):
            ObjectDouble.__init__(material)
            material.expressions, material.links, material.compiled = [], [], False

        self.Material = object_class("Material", __init__=material_init)

        def component_init(component):
            ObjectDouble.__init__(component)
            component.props["post_process_settings"] = module.PostProcessSettings(weighted_blendables=module.WeightedBlendables([]))
            component.captures = 0

        def capture_scene(component):
            component.captures += 1

        self.SceneCaptureComponent2D = object_class("SceneCaptureComponent2D", __init__=component_init, capture_scene=capture_scene)

        def actor_init(actor):
            ObjectDouble.__init__(actor)
            actor.props["capture_component2d"] = module.SceneCaptureComponent2D()

        self.SceneCapture2D = object_class("SceneCapture2D", __init__=actor_init)
        self.ImgMediaSource = object_class("ImgMediaSource", set_sequence_path=lambda s, path: setattr(s, "sequence_path", path))

        def open_source(player, source):
            player.opened = source
            return True

        self.MediaPlayer = object_class("MediaPlayer", open_source=open_source, set_looping=lambda p, loop: setattr(p, "looping", loop) or True)
        self.TextureRenderTarget2D = object_class("TextureRenderTarget2D")
        self.LevelSequence = LevelSequenceDouble

        def world_subsystem_init(subsystem):
            ObjectDouble.__init__(subsystem)
            subsystem.world = types.SimpleNamespace(get_path_name=lambda: "/Game/Maps/Street.Street")

        self.UnrealEditorSubsystem = object_class("UnrealEditorSubsystem", __init__=world_subsystem_init,
                                                  get_editor_world=lambda s: s.world,
                                                  get_level_viewport_camera_info=lambda s: ("location", "rotation"))  # fmt: skip

        def open_editors(subsystem, assets):
            subsystem.opened = getattr(subsystem, "opened", []) + list(assets)
            return True

        self.AssetEditorSubsystem = object_class("AssetEditorSubsystem", open_editor_for_assets=open_editors)

        def actors_init(subsystem):
            ObjectDouble.__init__(subsystem)
            subsystem.spawned, subsystem.destroyed = [], []

        def spawn(subsystem, actor_class, location, rotation):
            subsystem.spawned.append(actor_class())
            return subsystem.spawned[-1]

        self.EditorActorSubsystem = object_class("EditorActorSubsystem", __init__=actors_init, spawn_actor_from_class=spawn,
                                                 destroy_actor=lambda s, actor: s.destroyed.append(actor) or True)  # fmt: skip

        def menu_init(menu, name=""):
            ObjectDouble.__init__(menu)
            menu.menu_name, menu.entries, menu.submenus, menu.label = name, {}, {}, ""

        def add_sub_menu(menu, owner, section_name, name, label, tool_tip=""):
            sub = menu.submenus.setdefault(name, module.ToolMenu(name))
            sub.label, sub.section = label, section_name
            return sub

        def add_menu_entry(menu, section_name, entry):
            menu.entries[(section_name, entry.props["name"])] = entry  # same name replaces, as FToolMenuSection::AddEntry does

        self.ToolMenu = object_class("ToolMenu", __init__=menu_init, add_sub_menu=add_sub_menu, add_menu_entry=add_menu_entry)

        def entry_init(entry, name="", type=None, owner=None):
            ObjectDouble.__init__(entry, name=name, type=type)
            entry.label = entry.tooltip = entry.command = None

        self.ToolMenuEntry = object_class(
            "ToolMenuEntry", __init__=entry_init, set_label=lambda e, label: setattr(e, "label", label),
            set_tool_tip=lambda e, tip: setattr(e, "tooltip", tip),
            set_string_command=lambda e, kind, custom_type, string: setattr(e, "command", (kind, string)),
        )  # fmt: skip

        # Structs, with the constructor arguments the plugin passes (Python API struct pages: DirectoryPath, SoftObjectPath,
        # IntPoint, FrameRate, Vector2D, WeightedBlendable, WeightedBlendables, EditorDialogLibraryObjectDetailsViewOptions).
        self.DirectoryPath = lambda path: ("DirectoryPath", path)
        self.SoftObjectPath = lambda path: ("SoftObjectPath", path)
        self.IntPoint = lambda x, y: ("IntPoint", x, y)
        self.FrameRate = lambda numerator=0, denominator=1: types.SimpleNamespace(numerator=numerator, denominator=denominator)
        self.Vector2D = lambda x=0.0, y=0.0: (x, y)
        self.WeightedBlendable = lambda weight=0.0, object=None: types.SimpleNamespace(weight=weight, object=object)
        self.WeightedBlendables = lambda array=(): types.SimpleNamespace(array=list(array))
        self.EditorDialogLibraryObjectDetailsViewOptions = lambda show_object_name=True, allow_search=True: (show_object_name, allow_search)

    # ------------------------------------------------------------ libraries and functions

    def _build_libraries(self):
        module = self

        class EditorAssetLibrary:  # page("EditorAssetLibrary")
            @staticmethod
            def does_asset_exist(path):
                return path in module.assets

            @staticmethod
            def load_asset(path):
                return module.assets[path]

            @staticmethod
            def save_loaded_asset(asset, only_if_is_dirty=True):
                module.saved.append(asset)
                return True

            @staticmethod
            def delete_asset(path):
                return module.assets.pop(path, None) is not None

        class AssetTools:  # page("AssetTools"): create_asset(asset_name, package_path, asset_class, factory)
            @staticmethod
            def create_asset(asset_name, package_path, asset_class, factory):
                path = f"{package_path}/{asset_name}"
                if path in module.assets:  # the real AssetTools refuses, with a dialog: the plugin must reuse instead
                    raise RuntimeError(f"AssetTools.create_asset: an asset already exists at {path}")
                asset = asset_class()
                asset.asset_name, asset.factory = asset_name, factory
                module.assets[path] = asset
                return asset

        class MaterialEditingLibrary:  # page("MaterialEditingLibrary")
            @staticmethod
            def create_material_expression(material, expression_class, node_pos_x=0, node_pos_y=0):
                node = expression_class()
                node.material = material
                material.expressions.append(node)
                return node

            @staticmethod
            def connect_material_expressions(from_expression, from_output_name, to_expression, to_input_name):
                from_expression.material.links.append((from_expression, from_output_name, to_expression, to_input_name))
                return True

            @staticmethod
            def connect_material_property(from_expression, from_output_name, property_):
                from_expression.material.links.append((from_expression, from_output_name, property_, ""))
                return True

            @staticmethod
            def recompile_material(material):
                material.compiled = True

        class RenderingLibrary:  # page("RenderingLibrary"); export per KismetRenderingLibrary.cpp (see export_render_target)
            @staticmethod
            def create_render_target2d(world_context_object, width=256, height=256, format=None, clear_color=None, auto_generate_mip_maps=False):
                target = module.TextureRenderTarget2D()
                target.set_editor_property("render_target_format", format)
                target.size = (width, height)
                return target

            @staticmethod
            def export_render_target(world_context_object, texture_render_target, file_path, file_name):
                """EXR only for RTF_RGBA16F (half channels); PNG bytes for any other format, whatever the name."""
                import OpenEXR
                from PIL import Image

                component = module.subsystem(module.EditorActorSubsystem).spawned[-1].props["capture_component2d"]
                blendables = component.props["post_process_settings"].props["weighted_blendables"].array
                rgb = module.render(blendables[0].object if blendables else None)
                path = os.path.join(file_path, file_name)
                if texture_render_target.props["render_target_format"] == module.TextureRenderTargetFormat.RTF_RGBA16F:
                    channels = {c: np.ascontiguousarray(np.minimum(rgb[..., i], 65504), np.float16) for i, c in enumerate("RGBA"[:3])}
                    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(path)
                else:
                    Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8)).save(path, format="PNG")
                module.exported.append(path)

            @staticmethod
            def resize_render_target2d(texture_render_target, width=256, height=256):
                texture_render_target.size = (width, height)

            @staticmethod
            def import_file_as_texture2d(world_context_object, filename):
                if not os.path.isfile(filename):
                    return None
                texture = module.Texture2D()
                texture.file = filename
                return texture

            @staticmethod
            def begin_draw_canvas_to_render_target(world_context_object, texture_render_target):
                canvas = types.SimpleNamespace(
                    draw_texture=lambda render_texture, screen_position, screen_size, coordinate_position, coordinate_size=(0, 0), *rest:
                    module.drawn.append((texture_render_target, render_texture)))  # fmt: skip
                return canvas, texture_render_target.size, ("DrawToRenderTargetContext", texture_render_target)

            @staticmethod
            def end_draw_canvas_to_render_target(world_context_object, context):
                assert context[0] == "DrawToRenderTargetContext"

        class EditorDialog:  # page("EditorDialog", "5.0")
            @staticmethod
            def show_message(title, message, message_type, default_value=None):
                module.logs.append(("dialog", message))

            @staticmethod
            def show_object_details_view(title, out_object, options):
                return module.details_dialog(out_object)

        class ToolMenus:  # page("ToolMenus")
            @staticmethod
            def get():
                return ToolMenus

            @staticmethod
            def find_menu(name):
                return module.menus.setdefault(name, module.ToolMenu(name))

            extend_menu = find_menu

            @staticmethod
            def refresh_all_widgets():
                module.refreshed += 1

        class LevelSequenceEditorBlueprintLibrary:  # page("LevelSequenceEditorBlueprintLibrary")
            @staticmethod
            def get_current_level_sequence():
                return module.current_sequence

            @staticmethod
            def set_current_time(new_frame):
                module.sequencer_time.append(new_frame)

        self.EditorAssetLibrary = EditorAssetLibrary
        self.AssetToolsHelpers = types.SimpleNamespace(get_asset_tools=lambda: AssetTools)  # page("AssetToolsHelpers")
        self.MaterialEditingLibrary = MaterialEditingLibrary
        self.RenderingLibrary = RenderingLibrary
        self.EditorDialog = EditorDialog
        self.ToolMenus = ToolMenus
        self.LevelSequenceEditorBlueprintLibrary = LevelSequenceEditorBlueprintLibrary
        self.EditorUtilityLibrary = types.SimpleNamespace(get_selected_assets=lambda: list(module.selected_assets))  # page("EditorUtilityLibrary")
        self.SystemLibrary = types.SimpleNamespace(  # page("SystemLibrary"): get_engine_version() -> str
            get_engine_version=lambda: f"{module.engine_version[0]}.{module.engine_version[1]}.0-12345678+++UE5+Release-{module.engine_version[0]}.{module.engine_version[1]}")
        self.Paths = types.SimpleNamespace(project_saved_dir=lambda: module.saved_dir)  # page("Paths")

    def subsystem(self, cls):
        if cls not in self.subsystems:
            self.subsystems[cls] = cls()
        return self.subsystems[cls]

    # module functions (python-api/module/unreal)

    def get_editor_subsystem(self, cls):
        return self.subsystem(cls)

    def new_object(self, type, outer=None, name="None"):
        return type()

    def get_interpreter_executable_path(self):
        return "/engine/python3"

    def log(self, message):
        self.logs.append(("log", message))

    def log_warning(self, message):
        self.logs.append(("warning", message))

    def log_error(self, message):
        self.logs.append(("error", message))

    def register_slate_post_tick_callback(self, callable_):
        handle = next(self._handles)
        self.post_tick[handle] = callable_
        return handle

    def unregister_slate_post_tick_callback(self, handle):
        del self.post_tick[handle]

    def uclass(self):
        return lambda cls: cls

    def uenum(self):
        return lambda cls: cls

    def uproperty(self, type, meta=None, getter=None, setter=None):
        return UPropertyDouble(type, meta)

    def uvalue(self, value, meta=None):
        return UValueDouble(value, meta)

    # ------------------------------------------------------------ test helpers (not the API)

    def tick(self, delta_seconds: float = 1 / 60) -> int:
        """One Slate frame: every registered post-tick callback once; returns how many are registered after."""
        for callback in list(self.post_tick.values()):
            callback(delta_seconds)
        return len(self.post_tick)


class LevelSequenceDouble:
    """A Level Sequence asset: a name, a path, a playback range and display rate (page("LevelSequence"), MovieSceneSequence)."""

    def __init__(self, name: str, start: int, end: int, fps: int = 24):
        self.name, self.start, self.end, self.fps = name, start, end, fps

    def get_name(self):
        return self.name

    def get_path_name(self):
        return f"/Game/Cinematics/{self.name}.{self.name}"

    def get_playback_start(self):
        return self.start

    def get_playback_end(self):
        return self.end

    def get_display_rate(self):
        return types.SimpleNamespace(numerator=self.fps, denominator=1)


def install_unreal_double(engine_version: tuple[int, int] = (5, 7)) -> UnrealModuleDouble:
    """Make ``import unreal`` give a fresh double, and drop the plugin's editor modules bound to an older one."""
    import sys

    double = UnrealModuleDouble(engine_version)
    sys.modules["unreal"] = double
    package = sys.modules.get("coarse2real_unreal")
    for name in [m for m in sys.modules if m.startswith("coarse2real_unreal.unreal_")]:
        del sys.modules[name]
        if package is not None and hasattr(package, name.rsplit(".", 1)[1]):
            delattr(package, name.rsplit(".", 1)[1])  # `from . import unreal_x` reads the package attribute first
    return double
