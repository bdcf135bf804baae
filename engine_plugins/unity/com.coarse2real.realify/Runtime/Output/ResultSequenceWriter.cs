using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using Coarse2Real.Core;
using UnityEngine;
using UnityEngine.Experimental.Rendering;

namespace Coarse2Real
{
    /// <summary>
    /// Result frames (RGB8, top row first) -> a live preview Texture2D and a PNG or EXR file named
    /// <c>{prefix}.{frame:0000}.{ext}</c>. The texture is updated on the main thread (a row flip and an
    /// upload); encoding and writing run on the thread pool with ImageConversion.EncodeArrayToPNG /
    /// EncodeArrayToEXR, which Unity documents as thread safe (ScriptReference, ImageConversion, 2019.3 to
    /// 6000.x). Their array follows texture memory order (bottom row first), the order the texture
    /// gets. EXR holds linear half floats (sRGB decoded by <see cref="ColorEncoding"/>), what compositors
    /// expect of EXR; PNG keeps the daemon's sRGB bytes.
    /// </summary>
    public sealed class ResultSequenceWriter
    {
        readonly string folder;
        readonly string prefix;
        readonly string extension;
        readonly List<Task> writes = new List<Task>();

        public ResultSequenceWriter(string folder, string prefix, string extension)
        {
            this.folder = folder;
            this.prefix = prefix;
            this.extension = extension;
            Directory.CreateDirectory(folder);
        }

        /// <summary>The newest frame back (final or progressive preview), for the window to draw.</summary>
        public Texture2D Latest { get; private set; }

        /// <summary>Show a frame; write it too unless it is a progressive preview. Main thread only.</summary>
        public void Show(int frame, byte[] rgbTopDown, int width, int height, bool preview)
        {
            byte[] bottomUp = PlanePacker.FlipRows(rgbTopDown, width, height, 3);
            if (Latest == null || Latest.width != width || Latest.height != height)
            {
                Latest = new Texture2D(width, height, TextureFormat.RGB24, false) { name = "Coarse2Real result" };
            }
            Latest.LoadRawTextureData(bottomUp);
            Latest.Apply();
            if (preview)
            {
                return;
            }
            string path = Path.Combine(folder, FrameFileNaming.FileName(prefix, frame, extension));
            bool exr = extension == "exr";
            lock (writes)
            {
                writes.RemoveAll(task => task.IsCompleted);
                writes.Add(Task.Run(() => File.WriteAllBytes(path, Encode(bottomUp, width, height, exr))));
            }
        }

        static byte[] Encode(byte[] bottomUp, int width, int height, bool exr)
        {
            if (!exr)
            {
                return ImageConversion.EncodeArrayToPNG(bottomUp, GraphicsFormat.R8G8B8_SRGB, (uint)width, (uint)height);
            }
            byte[] half = ColorEncoding.SrgbToLinearHalfRgba(bottomUp, width, height);
            return ImageConversion.EncodeArrayToEXR(half, GraphicsFormat.R16G16B16A16_SFloat, (uint)width, (uint)height, 0, Texture2D.EXRFlags.CompressZIP);
        }

        /// <summary>Every file handed to the pool is on disk (or its failure is raised).</summary>
        public Task FlushAsync()
        {
            lock (writes)
            {
                return Task.WhenAll(writes.ToArray());
            }
        }
    }
}
