"""Live preview: the newest frame the daemon returned, drawn into a render target open in its editor.

The render target ``/Game/Coarse2Real/Review/C2R_LivePreview`` opens in the texture editor when a run
starts; every tick that has a newer frame on disk draws it there: ``RenderingLibrary.import_file_as_texture2d``
(a transient texture from a PNG), then ``begin_draw_canvas_to_render_target`` -> ``Canvas.draw_texture`` ->
``end_draw_canvas_to_render_target`` (Python API, class/RenderingLibrary and class/Canvas, UE 5.0-5.7;
``begin_draw_canvas_to_render_target(world_context_object, texture_render_target) -> (canvas, size, context)``).
Previews (progressive estimates) and final frames both show here; files only ever hold final frames.
"""

from __future__ import annotations

import unreal

from .unreal_review import review_asset

PREVIEW_ASSET = "C2R_LivePreview"


class LivePreview:
    def __init__(self, world):
        self.world = world
        self.target = review_asset(PREVIEW_ASSET, unreal.TextureRenderTarget2D, unreal.TextureRenderTargetFactoryNew)
        self.size: tuple[int, int] | None = None
        unreal.get_editor_subsystem(unreal.AssetEditorSubsystem).open_editor_for_assets([self.target])

    def show(self, path: str, width: int, height: int) -> None:
        """Draw the PNG at ``path`` ((height, width) pixels) over the whole preview target."""
        if self.size != (width, height):
            unreal.RenderingLibrary.resize_render_target2d(self.target, width, height)
            self.size = (width, height)
        texture = unreal.RenderingLibrary.import_file_as_texture2d(self.world, path)
        canvas, size, context = unreal.RenderingLibrary.begin_draw_canvas_to_render_target(self.world, self.target)
        canvas.draw_texture(texture, unreal.Vector2D(0.0, 0.0), size, unreal.Vector2D(0.0, 0.0), unreal.Vector2D(1.0, 1.0))
        unreal.RenderingLibrary.end_draw_canvas_to_render_target(self.world, context)
