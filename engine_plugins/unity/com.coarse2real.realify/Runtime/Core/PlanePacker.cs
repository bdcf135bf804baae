using System;

namespace Coarse2Real.Core
{
    /// <summary>Wire dtypes, numbered as in coarse2real.proto's DType.</summary>
    public enum PlaneDType { UInt8 = 1, Float16 = 2, Float32 = 3 }

    /// <summary>One raw plane as the daemon wants it: row 0 at the top, little-endian, C order.</summary>
    public sealed class PackedPlane
    {
        public PackedPlane(PlaneDType dtype, uint[] shape, byte[] data)
        {
            DType = dtype;
            Shape = shape;
            Data = data;
        }

        public PlaneDType DType { get; }
        public uint[] Shape { get; }
        public byte[] Data { get; }
    }

    /// <summary>
    /// Turns Unity readback buffers into wire planes. Unity textures put row 0 at the bottom
    /// (texture coordinates start bottom-left) while the wire puts row 0 at the top, so every
    /// packer flips rows; readbacks hold RGBA even where only RGB or R is meaningful, so the
    /// packers also drop channels. Everything is written little-endian whatever the CPU.
    /// </summary>
    public static class PlanePacker
    {
        /// <summary>RGBA32 (4 bytes per pixel, sRGB) -> (H, W, 3) UINT8.</summary>
        public static PackedPlane ColorFromRgba32(byte[] rgba, int width, int height, bool rowsBottomUp = true)
        {
            CheckLength("colour", rgba.Length, width, height, 4);
            var data = new byte[width * height * 3];
            for (int row = 0; row < height; row++)
            {
                int source = SourceRow(row, height, rowsBottomUp) * width * 4;
                int target = row * width * 3;
                for (int x = 0; x < width; x++)
                {
                    data[target + x * 3] = rgba[source + x * 4];
                    data[target + x * 3 + 1] = rgba[source + x * 4 + 1];
                    data[target + x * 3 + 2] = rgba[source + x * 4 + 2];
                }
            }
            return new PackedPlane(PlaneDType.UInt8, Shape(height, width, 3), data);
        }

        /// <summary>RGBAHalf (4 half floats per pixel, raw bits) -> (H, W, 3) FLOAT16: linear colour or normals.</summary>
        public static PackedPlane RgbFromRgbaHalf(ushort[] rgbaHalf, int width, int height, bool rowsBottomUp = true)
        {
            CheckLength("half-float RGBA", rgbaHalf.Length, width, height, 4);
            var data = new byte[width * height * 3 * 2];
            for (int row = 0; row < height; row++)
            {
                int source = SourceRow(row, height, rowsBottomUp) * width * 4;
                int target = row * width * 3;
                for (int x = 0; x < width; x++)
                {
                    for (int c = 0; c < 3; c++)
                    {
                        WriteUInt16(data, (target + x * 3 + c) * 2, rgbaHalf[source + x * 4 + c]);
                    }
                }
            }
            return new PackedPlane(PlaneDType.Float16, Shape(height, width, 3), data);
        }

        /// <summary>One float per pixel (RFloat) -> (H, W) FLOAT32, e.g. depth already converted to DISTANCE.</summary>
        public static PackedPlane DepthFromFloats(float[] depth, int width, int height, bool rowsBottomUp = true)
        {
            CheckLength("depth", depth.Length, width, height, 1);
            var data = new byte[width * height * 4];
            for (int row = 0; row < height; row++)
            {
                int source = SourceRow(row, height, rowsBottomUp) * width;
                for (int x = 0; x < width; x++)
                {
                    WriteSingle(data, (row * width + x) * 4, depth[source + x]);
                }
            }
            return new PackedPlane(PlaneDType.Float32, Shape(height, width), data);
        }

        /// <summary>
        /// A copy of <paramref name="pixels"/> with the row order reversed: turns a result frame
        /// (top row first, as the daemon sends it) into Unity's bottom-up texture layout, and back.
        /// </summary>
        public static byte[] FlipRows(byte[] pixels, int width, int height, int bytesPerPixel)
        {
            CheckLength("result", pixels.Length, width, height, bytesPerPixel);
            var flipped = new byte[pixels.Length];
            int stride = width * bytesPerPixel;
            for (int row = 0; row < height; row++)
            {
                Buffer.BlockCopy(pixels, row * stride, flipped, (height - 1 - row) * stride, stride);
            }
            return flipped;
        }

        static int SourceRow(int row, int height, bool rowsBottomUp) => rowsBottomUp ? height - 1 - row : row;

        static uint[] Shape(int height, int width, int channels = 0) =>
            channels == 0 ? new[] { (uint)height, (uint)width } : new[] { (uint)height, (uint)width, (uint)channels };

        static void CheckLength(string what, int length, int width, int height, int channels)
        {
            if (width <= 0 || height <= 0)
            {
                throw new ArgumentException($"{what}: size {width}x{height} is empty; capture at least 1x1 pixels");
            }
            long expected = (long)width * height * channels;
            if (length != expected)
            {
                throw new ArgumentException(
                    $"{what}: got {length} values for a {width}x{height} image with {channels} channel(s), expected {expected}; " +
                    "read back the render texture at the capture size and format");
            }
        }

        static void WriteUInt16(byte[] target, int offset, ushort value)
        {
            target[offset] = (byte)(value & 0xFF);
            target[offset + 1] = (byte)(value >> 8);
        }

        static void WriteSingle(byte[] target, int offset, float value)
        {
            byte[] bytes = BitConverter.GetBytes(value);
            if (!BitConverter.IsLittleEndian)
            {
                Array.Reverse(bytes);
            }
            Buffer.BlockCopy(bytes, 0, target, offset, 4);
        }
    }
}
