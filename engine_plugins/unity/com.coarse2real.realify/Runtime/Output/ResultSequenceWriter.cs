using System.IO;
using Coarse2Real.Core;
using UnityEngine;

namespace Coarse2Real
{
    /// <summary>
    /// Result frames (RGB8, top row first) -> a Texture2D for display and a PNG or EXR file named
    /// <c>{prefix}.{frame:0000}.{ext}</c>. EXR gets linear half floats (sRGB decoded), what
    /// compositors expect of EXR; PNG keeps the daemon's sRGB bytes.
    /// </summary>
    public sealed class ResultSequenceWriter
    {
        readonly string folder;
        readonly string prefix;
        readonly string extension;

        public ResultSequenceWriter(string folder, string prefix, string extension)
        {
            this.folder = folder;
            this.prefix = prefix;
            this.extension = extension;
            Directory.CreateDirectory(folder);
        }

        public Texture2D Latest { get; private set; }

        public string Write(int frame, byte[] rgbTopDown, int width, int height)
        {
            if (Latest == null || Latest.width != width || Latest.height != height)
            {
                Latest = new Texture2D(width, height, TextureFormat.RGB24, false) { name = "Coarse2Real result" };
            }
            Latest.LoadRawTextureData(PlanePacker.FlipRows(rgbTopDown, width, height, 3));
            Latest.Apply();
            string path = Path.Combine(folder, FrameFileNaming.FileName(prefix, frame, extension));
            File.WriteAllBytes(path, extension == "exr" ? EncodeLinearExr(Latest) : Latest.EncodeToPNG());
            return path;
        }

        static byte[] EncodeLinearExr(Texture2D srgb)
        {
            var linear = new Texture2D(srgb.width, srgb.height, TextureFormat.RGBAHalf, false, true);
            Color[] pixels = srgb.GetPixels();
            for (int i = 0; i < pixels.Length; i++)
            {
                pixels[i] = pixels[i].linear;
            }
            linear.SetPixels(pixels);
            linear.Apply();
            byte[] exr = linear.EncodeToEXR(Texture2D.EXRFlags.CompressZIP);
            Object.DestroyImmediate(linear);
            return exr;
        }
    }
}
