namespace Coarse2Real.Core
{
    /// <summary>
    /// Which way up the depth/normal copy must sample so its rows match the colour's.
    ///
    /// The capture's colour is the camera's own render into a RenderTexture: on every graphics API its
    /// memory holds the image bottom row first (on D3D, Metal and Vulkan Unity flips the projection when
    /// rendering into a texture for exactly that; SystemInfo.graphicsUVStartsAtTop is true there). The
    /// depth and normals come from URP's camera textures through a full-screen triangle whose vertices are
    /// given in clip space, with no projection: clip-space top lands in memory row 0 where
    /// graphicsUVStartsAtTop, in the last row elsewhere (OpenGL). A texture coordinate v addresses memory
    /// row v on every API. So, with y the output's clip-space height in [0, 1] (1 at the top):
    /// <list type="bullet">
    /// <item>OpenGL: output row = y; the source is bottom-first like the colour: sample v = y.</item>
    /// <item>UV-at-top API, source rendered with the flipped projection (bottom-first): output row = 1 - y, sample v = 1 - y.</item>
    /// <item>UV-at-top API, source rendered without the flip (top-first, as for a camera drawing to the back
    /// buffer): the row holding image height y is 1 - y in the source, so sample v = y.</item>
    /// </list>
    /// The shader samples v = y, or 1 - y when <see cref="FlipSampleY"/> says so (the _C2RFlipY uniform).
    /// </summary>
    public static class CaptureOrientation
    {
        public static bool FlipSampleY(bool graphicsUVStartsAtTop, bool sourceProjectionFlipped) => graphicsUVStartsAtTop && sourceProjectionFlipped;
    }
}
