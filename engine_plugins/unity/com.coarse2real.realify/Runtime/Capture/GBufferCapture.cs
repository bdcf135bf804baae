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
    /// reused safely from one frame to the next. After <see cref="Dispose"/> starts, readbacks that
    /// still complete are dropped: a cancelled run never hears from its capture again.
    /// </summary>
    public sealed class GBufferCapture : IDisposable
    {
        static readonly Dictionary<Camera, GBufferCapture> Active = new Dictionary<Camera, GBufferCapture>();

        readonly Camera camera;
        readonly RenderTexture color;
        readonly bool withNormals;
        bool disposed;
        int pending;

        public GBufferCapture(Camera camera, int width, int height, bool withNormals = true)
        {
            if (camera == null)
            {
                throw new ArgumentException("choose a Camera to capture");
            }
            this.camera = camera;
            this.withNormals = withNormals;
            Width = width;
            Height = height;
            color = new RenderTexture(width, height, 24, RenderTextureFormat.ARGB32, RenderTextureReadWrite.sRGB) { name = "Coarse2Real colour" };
            DepthTarget = new RenderTexture(width, height, 0, RenderTextureFormat.RFloat, RenderTextureReadWrite.Linear) { name = "Coarse2Real depth" };
            NormalsTarget = new RenderTexture(width, height, 0, RenderTextureFormat.ARGBHalf, RenderTextureReadWrite.Linear) { name = "Coarse2Real normals" };
            DepthHandle = RTHandles.Alloc(DepthTarget);
            NormalsHandle = RTHandles.Alloc(NormalsTarget);
            Active[camera] = this;
        }

        public int Width { get; }
        public int Height { get; }
        public RenderTexture DepthTarget { get; }
        public RenderTexture NormalsTarget { get; }
        /// <summary>The same textures for Render Graph's ImportTexture (SRP Core RTHandles.Alloc(RenderTexture)).</summary>
        public RTHandle DepthHandle { get; }
        public RTHandle NormalsHandle { get; }
        public int PendingReadbacks => pending;

        /// <summary>The capture the renderer feature should fill for <paramref name="camera"/>, if any.</summary>
        public static GBufferCapture ActiveFor(Camera camera)
        {
            GBufferCapture capture;
            return camera != null && Active.TryGetValue(camera, out capture) ? capture : null;
        }

        public void Capture(long index, Action<CapturedFrame> onReady, Action<string> onError)
        {
            RenderTexture previous = camera.targetTexture;
            camera.targetTexture = color;
            camera.Render(); // URP renders now; RealifyGBufferFeature fills depth and normals
            camera.targetTexture = previous;

            var frame = new FrameAssembly(this, new CapturedFrame { Index = index, Width = Width, Height = Height }, withNormals ? 3 : 2, onReady, onError);
            pending++;
            Read(color, TextureFormat.RGBA32, request => frame.Frame.Color = PlanePacker.ColorFromRgba32(ToArray(request.GetData<byte>()), Width, Height), frame);
            float near = camera.nearClipPlane, far = camera.farClipPlane;
            bool orthographic = camera.orthographic;
            Read(DepthTarget, TextureFormat.RFloat, request =>
            {
                float[] depth = ToArray(request.GetData<float>());
                DepthConversion.EyeDepthsFromDevice(depth, near, far, SystemInfo.usesReversedZBuffer, orthographic);
                frame.Frame.Depth = PlanePacker.DepthFromFloats(depth, Width, Height);
            }, frame);
            if (withNormals)
            {
                Read(NormalsTarget, TextureFormat.RGBAHalf, request => frame.Frame.Normals = PlanePacker.RgbFromRgbaHalf(ToArray(request.GetData<ushort>()), Width, Height), frame);
            }
        }

        /// <summary>Collects one frame's readbacks; reports it once, and never after the capture was disposed.</summary>
        sealed class FrameAssembly
        {
            readonly GBufferCapture owner;
            readonly Action<CapturedFrame> onReady;
            readonly Action<string> onError;
            int waiting;

            public FrameAssembly(GBufferCapture owner, CapturedFrame frame, int parts, Action<CapturedFrame> onReady, Action<string> onError)
            {
                this.owner = owner;
                Frame = frame;
                waiting = parts;
                this.onReady = onReady;
                this.onError = onError;
            }

            public CapturedFrame Frame { get; }

            public void Arrived(string error)
            {
                if (waiting <= 0 || owner.disposed)
                {
                    return; // already reported (an earlier part failed), or the run is over
                }
                if (error != null)
                {
                    waiting = 0;
                    owner.pending--;
                    onError(error);
                    return;
                }
                if (--waiting == 0)
                {
                    owner.pending--;
                    onReady(Frame);
                }
            }
        }

        void Read(RenderTexture source, TextureFormat format, Action<AsyncGPUReadbackRequest> pack, FrameAssembly frame)
        {
            AsyncGPUReadback.Request(source, 0, format, request =>
            {
                if (disposed)
                {
                    return;
                }
                if (request.hasError)
                {
                    frame.Arrived($"GPU readback of {source.name} failed; is the render texture format supported on this graphics API?");
                    return;
                }
                pack(request);
                frame.Arrived(null);
            });
        }

        static T[] ToArray<T>(NativeArray<T> data) where T : struct => data.ToArray();

        public void Dispose()
        {
            if (disposed)
            {
                return;
            }
            disposed = true; // callbacks fired by WaitAllRequests below are dropped
            Active.Remove(camera);
            AsyncGPUReadback.WaitAllRequests();
            DepthHandle.Release();
            NormalsHandle.Release();
            foreach (var texture in new[] { color, DepthTarget, NormalsTarget })
            {
                texture.Release();
                UnityEngine.Object.DestroyImmediate(texture);
            }
        }
    }
}
