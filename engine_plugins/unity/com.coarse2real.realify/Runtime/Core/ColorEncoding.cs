using System;

namespace Coarse2Real.Core
{
    /// <summary>
    /// Result pixels for EXR files: the daemon's sRGB bytes decoded to linear light and stored as
    /// half floats (what compositors expect of EXR). Pure C#, so it runs on a worker thread and is
    /// tested outside Unity; IEEE 754 binary16 with round-to-nearest-even.
    /// </summary>
    public static class ColorEncoding
    {
        static readonly ushort[] SrgbToLinearHalfTable = BuildTable();

        static ushort[] BuildTable()
        {
            var table = new ushort[256];
            for (int i = 0; i < 256; i++)
            {
                double c = i / 255.0;
                double linear = c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
                table[i] = ToHalf((float)linear);
            }
            return table;
        }

        /// <summary>RGB8 sRGB (any row order; kept) -> RGBA half floats, alpha 1, as raw little-endian bytes.</summary>
        public static byte[] SrgbToLinearHalfRgba(byte[] rgb, int width, int height)
        {
            if (rgb.Length != (long)width * height * 3)
            {
                throw new ArgumentException($"result frame: {rgb.Length} bytes for {width}x{height} RGB, expected {(long)width * height * 3}");
            }
            var data = new byte[width * height * 8];
            ushort one = ToHalf(1f);
            for (int p = 0, i = 0; p < width * height; p++)
            {
                for (int c = 0; c < 3; c++, i += 2)
                {
                    ushort half = SrgbToLinearHalfTable[rgb[p * 3 + c]];
                    data[i] = (byte)(half & 0xFF);
                    data[i + 1] = (byte)(half >> 8);
                }
                data[i] = (byte)(one & 0xFF);
                data[i + 1] = (byte)(one >> 8);
                i += 2;
            }
            return data;
        }

        /// <summary>The binary16 bits nearest to <paramref name="value"/> (overflow to infinity, NaN kept NaN).</summary>
        public static ushort ToHalf(float value)
        {
            uint bits = BitConverter.ToUInt32(BitConverter.GetBytes(value), 0);
            uint sign = (bits >> 16) & 0x8000;
            int exponent = (int)((bits >> 23) & 0xFF);
            uint mantissa = bits & 0x7FFFFF;
            if (exponent == 0xFF)
            {
                return (ushort)(sign | 0x7C00 | (mantissa != 0 ? 0x200u : 0u));
            }
            int halfExponent = exponent - 127 + 15;
            if (halfExponent >= 0x1F)
            {
                return (ushort)(sign | 0x7C00);
            }
            if (halfExponent <= 0)
            {
                if (halfExponent < -10)
                {
                    return (ushort)sign;
                }
                mantissa |= 0x800000; // the implicit leading one, shifted into a subnormal
                int shift = 14 - halfExponent;
                uint halfMantissa = mantissa >> shift;
                uint remainder = mantissa & ((1u << shift) - 1);
                uint halfway = 1u << (shift - 1);
                if (remainder > halfway || (remainder == halfway && (halfMantissa & 1) != 0))
                {
                    halfMantissa++;
                }
                return (ushort)(sign | halfMantissa);
            }
            uint result = sign | ((uint)halfExponent << 10) | (mantissa >> 13);
            uint rest = mantissa & 0x1FFF;
            if (rest > 0x1000 || (rest == 0x1000 && (result & 1) != 0))
            {
                result++; // may carry into the exponent: still the right nearest value (up to infinity)
            }
            return (ushort)result;
        }
    }
}
