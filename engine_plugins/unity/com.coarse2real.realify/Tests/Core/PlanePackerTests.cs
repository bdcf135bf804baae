using System;
using NUnit.Framework;

namespace Coarse2Real.Core.Tests
{
    public class PlanePackerTests
    {
        // A 2x2 image as Unity reads it back: the first row in memory is the BOTTOM row.
        static readonly byte[] Rgba32BottomUp = { 1, 2, 3, 255, 4, 5, 6, 255, /* top: */ 7, 8, 9, 255, 10, 11, 12, 255 };

        [Test]
        public void ColourDropsAlphaAndPutsTheTopRowFirst()
        {
            PackedPlane plane = PlanePacker.ColorFromRgba32(Rgba32BottomUp, 2, 2);
            Assert.AreEqual(PlaneDType.UInt8, plane.DType);
            CollectionAssert.AreEqual(new uint[] { 2, 2, 3 }, plane.Shape);
            CollectionAssert.AreEqual(new byte[] { 7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6 }, plane.Data);
        }

        [Test]
        public void TopDownSourcesAreNotFlipped()
        {
            PackedPlane plane = PlanePacker.ColorFromRgba32(Rgba32BottomUp, 2, 2, rowsBottomUp: false);
            CollectionAssert.AreEqual(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, plane.Data);
        }

        [Test]
        public void DepthIsLittleEndianFloat32TopRowFirst()
        {
            PackedPlane plane = PlanePacker.DepthFromFloats(new[] { 1f, 2f, 3f, float.PositiveInfinity }, 2, 2);
            Assert.AreEqual(PlaneDType.Float32, plane.DType);
            CollectionAssert.AreEqual(new uint[] { 2, 2 }, plane.Shape);
            // 3.0f = 0x40400000, +inf = 0x7F800000, 1.0f = 0x3F800000, 2.0f = 0x40000000, least significant byte first.
            CollectionAssert.AreEqual(new byte[] { 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x7F, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40 }, plane.Data);
        }

        [Test]
        public void HalfRgbaKeepsRawHalfBitsAndDropsAlpha()
        {
            // 1x2: bottom pixel (1, 0.5, -1, a) then top pixel (0, 2, 0.25, a), as raw IEEE half bits.
            ushort[] halves = { 0x3C00, 0x3800, 0xBC00, 0x3C00, 0x0000, 0x4000, 0x3400, 0x3C00 };
            PackedPlane plane = PlanePacker.RgbFromRgbaHalf(halves, 1, 2);
            Assert.AreEqual(PlaneDType.Float16, plane.DType);
            CollectionAssert.AreEqual(new uint[] { 2, 1, 3 }, plane.Shape);
            CollectionAssert.AreEqual(new byte[] { 0x00, 0x00, 0x00, 0x40, 0x00, 0x34, 0x00, 0x3C, 0x00, 0x38, 0x00, 0xBC }, plane.Data);
        }

        [Test]
        public void ResultRowsFlipBackToUnitysLayout()
        {
            byte[] topDown = { 7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6 }; // 2x2 RGB8 from the daemon
            CollectionAssert.AreEqual(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, PlanePacker.FlipRows(topDown, 2, 2, 3));
        }

        [Test]
        public void WrongBufferLengthSaysWhatWasExpected()
        {
            var error = Assert.Throws<ArgumentException>(() => PlanePacker.ColorFromRgba32(new byte[15], 2, 2));
            StringAssert.Contains("got 15 values", error.Message);
            StringAssert.Contains("expected 16", error.Message);
        }
    }

    public class DepthConversionTests
    {
        [Test]
        public void ReversedDeviceDepthMapsToEyeDepthAndFarToSky()
        {
            Assert.AreEqual(0.1f, DepthConversion.EyeDepthFromDevice(1f, 0.1f, 100f, reversedZ: true), 1e-5f);
            Assert.AreEqual(1f / (999f / 100f * 0.5f + 0.01f), DepthConversion.EyeDepthFromDevice(0.5f, 0.1f, 100f, true), 1e-4f);
            Assert.IsTrue(float.IsPositiveInfinity(DepthConversion.EyeDepthFromDevice(0f, 0.1f, 100f, true)));
        }

        [Test]
        public void ConventionalDeviceDepthMapsNearToNear()
        {
            Assert.AreEqual(0.3f, DepthConversion.EyeDepthFromDevice(0f, 0.3f, 1000f, reversedZ: false), 1e-5f);
            Assert.IsTrue(float.IsPositiveInfinity(DepthConversion.EyeDepthFromDevice(1f, 0.3f, 1000f, false)));
        }

        [Test]
        public void BadClipPlanesAreRefused()
        {
            Assert.Throws<ArgumentException>(() => DepthConversion.EyeDepthFromDevice(0.5f, 10f, 1f, true));
        }

        [Test]
        public void OrthographicDepthIsLinearBetweenThePlanes()
        {
            Assert.AreEqual(5.5f, DepthConversion.EyeDepthFromDevice(0.5f, 1f, 10f, reversedZ: true, orthographic: true), 1e-5f);
            Assert.AreEqual(1f, DepthConversion.EyeDepthFromDevice(0f, 1f, 10f, reversedZ: false, orthographic: true), 1e-5f);
        }

        [Test]
        public void AWholeReadbackConvertsInPlace()
        {
            float[] depth = { 1f, 0f, 0.5f };
            DepthConversion.EyeDepthsFromDevice(depth, 0.1f, 100f, reversedZ: true);
            Assert.AreEqual(0.1f, depth[0], 1e-5f);
            Assert.IsTrue(float.IsPositiveInfinity(depth[1]));
            Assert.AreEqual(DepthConversion.EyeDepthFromDevice(0.5f, 0.1f, 100f, true), depth[2]);
        }
    }
}
