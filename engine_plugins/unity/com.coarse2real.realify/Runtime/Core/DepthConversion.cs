using System;

namespace Coarse2Real.Core
{
    /// <summary>
    /// Unity device depth -> the wire's DISTANCE convention: distance along the camera's view
    /// axis in metres (Unity's "linear eye depth"), larger is farther, +inf where nothing was
    /// drawn (sky). Device depth is what the capture shader copies out of URP's depth texture:
    /// non-linear for perspective cameras and, on D3D11/12, Metal, Vulkan and consoles,
    /// reversed (1 at the near plane, 0 at the far plane; SystemInfo.usesReversedZBuffer).
    /// Doing this on the CPU keeps the convention in tested, engine-independent code.
    /// </summary>
    public static class DepthConversion
    {
        /// <summary>Linear eye depth of one device depth value, as Unity's LinearEyeDepth with _ZBufferParams.</summary>
        public static float EyeDepthFromDevice(float device, float near, float far, bool reversedZ, bool orthographic = false)
        {
            if (!(near > 0f) || !(far > near))
            {
                throw new ArgumentException($"camera clip planes near={near}, far={far}: need 0 < near < far");
            }
            double linear01 = reversedZ ? 1.0 - device : device; // 0 at the near plane, 1 at the far plane
            if (linear01 >= 1.0 - 1e-7)
            {
                return float.PositiveInfinity; // cleared depth: nothing was drawn there (sky)
            }
            if (orthographic)
            {
                return (float)(near + (far - near) * linear01);
            }
            // _ZBufferParams: x = 1 - far/near, y = far/near (reversed: x = -1 + far/near, y = 1); z = x/far, w = y/far.
            double x = reversedZ ? -1.0 + far / (double)near : 1.0 - far / (double)near;
            double y = reversedZ ? 1.0 : far / (double)near;
            return (float)(1.0 / (x / far * device + y / far));
        }

        /// <summary>A whole readback converted in place.</summary>
        public static void EyeDepthsFromDevice(float[] depth, float near, float far, bool reversedZ, bool orthographic = false)
        {
            for (int i = 0; i < depth.Length; i++)
            {
                depth[i] = EyeDepthFromDevice(depth[i], near, far, reversedZ, orthographic);
            }
        }
    }
}
