using System;
using System.Collections.Generic;
using Coarse2Real.Core;
using Unity.Collections;
using UnityEngine;
using UnityEngine.Rendering;

namespace Coarse2Real
{
    /// <summary>One captured frame, packed for the wire (top row first, little-endian).</summary>
    public sealed class CapturedFrame
    {
        public long Index;
        public int Width, Height;
        public PackedPlane Color, Depth, Normals;
    }

    /// <summary>
    /// Renders one camera into three render textures (sRGB colour, device depth, view
    /// normals) and reads them back with AsyncGPUReadback, so the editor never waits on the GPU:
    /// <see cref="Capture"/> returns at once and <c>onReady</c> runs a few frames later on the
    /// main thread with the packed planes. Readbacks keep GPU command order, so the targets are
    /// reused safely from one frame to the next.
    /// </summary>
    public sealed class GBufferCapture : IDisposable
    {
        static readonly Dictionary<Camera, GBufferCapture> Active = new Dictionary<Camera, GBufferCapture>();

        readonly Camera camera;
        readonly RenderTexture color;
        readonly bool withNormals;
        int pending;

        public GBufferCapture(Camera camera, int width, int height, bool withNormals = true)
        {
            this.camera = camera ? camera : throw new ArgumentException("choose a Camera to capture");
            this.withNormals = withNormals;
            Width = width;
            Height = height;
            color = new RenderTexture(width, height, 24, RenderTextureFormat.ARGB32, RenderTextureReadWrite.sRGB) { name = "Coarse2Real colour" };
            DepthTarget = new RenderTexture(width, height, 0, RenderTextureFormat.RFloat, RenderTextureReadWrite.Linear) { name = "Coarse2Real depth" };
            NormalsTarget = new RenderTexture(width, height, 0, RenderTextureFormat.ARGBHalf, RenderTextureReadWrite.Linear) { name = "Coarse2Real normals" };
            Active[camera] = this;
        }

        public int Width { get; }
        public int Height { get; }
        public RenderTexture DepthTarget { get; }
        public RenderTexture NormalsTarget { get; }
        public int PendingReadbacks => pending;

        /// <summary>The capture the renderer feature should fill for <paramref name="camera"/>, if any.</summary>
        public static GBufferCapture ActiveFor(Camera camera) => camera != null && Active.TryGetValue(camera, out var capture) ? capture : null;

        public void Capture(long index, Action<CapturedFrame> onReady, Action<string> onError)
        {
            RenderTexture previous = camera.targetTexture;
            camera.targetTexture = color;
            camera.Render(); // URP renders now; RealifyGBufferFeature fills depth and normals
            camera.targetTexture = previous;

            var frame = new CapturedFrame { Index = index, Width = Width, Height = Height };
            int waiting = withNormals ? 3 : 2;
            pending++;
            void Done(string error)
            {
                if (error != null)
                {
                    pending--;
                    onError(error);
                    waiting = -1;
                    return;
                }
                if (--waiting == 0)
                {
                    pending--;
                    onReady(frame);
                }
            }
            Read(color, TextureFormat.RGBA32, request => frame.Color = PlanePacker.ColorFromRgba32(ToArray(request.GetData<byte>()), Width, Height), Done);
            float near = camera.nearClipPlane, far = camera.farClipPlane;
            bool orthographic = camera.orthographic;
            Read(DepthTarget, TextureFormat.RFloat, request =>
            {
                float[] depth = ToArray(request.GetData<float>());
                DepthConversion.EyeDepthsFromDevice(depth, near, far, SystemInfo.usesReversedZBuffer, orthographic);
                frame.Depth = PlanePacker.DepthFromFloats(depth, Width, Height);
            }, Done);
            if (withNormals)
            {
                Read(NormalsTarget, TextureFormat.RGBAHalf, request => frame.Normals = PlanePacker.RgbFromRgbaHalf(ToArray(request.GetData<ushort>()), Width, Height), Done);
            }
        }

        static void Read(RenderTexture source, TextureFormat format, Action<AsyncGPUReadbackRequest> pack, Action<string> done)
        {
            AsyncGPUReadback.Request(source, 0, format, request =>
            {
                if (request.hasError)
                {
                    done($"GPU readback of {source.name} failed; is the render texture format supported on this graphics API?");
                    return;
                }
                pack(request);
                done(null);
            });
        }

        static T[] ToArray<T>(NativeArray<T> data) where T : struct => data.ToArray();

        public void Dispose()
        {
            Active.Remove(camera);
            AsyncGPUReadback.WaitAllRequests();
            foreach (var texture in new[] { color, DepthTarget, NormalsTarget })
            {
                texture.Release();
                UnityEngine.Object.DestroyImmediate(texture);
            }
        }
    }
}
