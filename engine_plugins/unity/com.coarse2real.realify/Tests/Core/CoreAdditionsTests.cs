using System;
using NUnit.Framework;

namespace Coarse2Real.Core.Tests
{
    public class DaemonAddressTests
    {
        [TestCase("127.0.0.1:50051", "127.0.0.1", 50051, true)]
        [TestCase("localhost:1", "localhost", 1, true)]
        [TestCase("[::1]:50051", "::1", 50051, true)]
        [TestCase("127.0.0.2:7", "127.0.0.2", 7, true)]
        [TestCase("gpu-box:50051", "gpu-box", 50051, false)]
        [TestCase("[2001:db8::5]:443", "2001:db8::5", 443, false)]
        public void ParsesHostPortAndKnowsLoopback(string text, string host, int port, bool loopback)
        {
            DaemonAddress address = DaemonAddress.Parse(text);
            Assert.AreEqual(host, address.Host);
            Assert.AreEqual(port, address.Port);
            Assert.AreEqual(loopback, address.IsLoopback);
        }

        [Test]
        public void Ipv6LoopbackNeedsNoTokenButARemoteHostDoes()
        {
            DaemonAddress.Parse("[::1]:50051").RequireTokenIfRemote(""); // the bug: "[::1]" was taken for a remote host
            Assert.AreEqual("http://[::1]:50051", DaemonAddress.Parse("[::1]:50051").Uri);
            var error = Assert.Throws<ArgumentException>(() => DaemonAddress.Parse("gpu-box:50051").RequireTokenIfRemote(null));
            StringAssert.Contains("--token", error.Message);
        }

        [TestCase("127.0.0.1", "write host:port")]
        [TestCase("::1:50051", "write host:port")]
        [TestCase("[::1]50051", "in brackets")]
        [TestCase("localhost:99999", "from 1 to 65535")]
        public void BadAddressesSayHowToWriteThem(string text, string hint)
        {
            var error = Assert.Throws<ArgumentException>(() => DaemonAddress.Parse(text));
            StringAssert.Contains(hint, error.Message);
        }
    }

    public class DaemonStatusTests
    {
        [Test]
        public void AnotherProtocolMajorIsAProblemWithTheFix()
        {
            Assert.IsNull(DaemonStatus.VersionProblem(1, 3, 1, 0, "a:1"));
            StringAssert.Contains("same coarse2real major version", DaemonStatus.VersionProblem(2, 0, 1, 0, "a:1"));
        }

        [Test]
        public void NoDaemonIsTheFriendlyMessageNotTheRpcText()
        {
            StringAssert.Contains("start one with `c2r serve`", DaemonStatus.Friendly("Unavailable", "failed to connect", "127.0.0.1:50051"));
            StringAssert.Contains("refused the token", DaemonStatus.Friendly("Unauthenticated", "", "h:1"));
            StringAssert.Contains("(Internal): boom", DaemonStatus.Friendly("Internal", "boom", "h:1"));
        }

        [Test]
        public void APlanSaysWhatItIsForAndWhatToLowerOnlyWhenItDoesNotFit()
        {
            string subject = DaemonStatus.PlanSubject(81, 640, 360);
            Assert.AreEqual("81 frames at 640x360", subject);
            Assert.AreEqual("one window at 1280x720", DaemonStatus.PlanSubject(0, 1280, 720));
            Assert.AreEqual("1 frame at 64x64", DaemonStatus.PlanSubject(1, 64, 64));
            Assert.AreEqual("For 81 frames at 640x360: Fits on your NVIDIA H100 80GB (80 GiB).",
                            DaemonStatus.DescribePlan(subject, true, "Fits on your NVIDIA H100 80GB (80 GiB).", "ignored when it fits"));
            Assert.AreEqual("For 81 frames at 640x360: Does not fit on your RTX 4060 (8 GiB).\nLower the quality to preview.",
                            DaemonStatus.DescribePlan(subject, false, "Does not fit on your RTX 4060 (8 GiB).", "Lower the quality to preview."));
            Assert.AreEqual("For one window at 1x1: No NVIDIA GPU.", DaemonStatus.DescribePlan(DaemonStatus.PlanSubject(0, 1, 1), false, "No NVIDIA GPU.", ""));
        }

        [Test]
        public void OnlyADaemonOfProtocol11OrLaterIsAskedForAPlan()
        {
            Assert.IsFalse(DaemonStatus.CanPlan(0));
            Assert.IsTrue(DaemonStatus.CanPlan(1) && DaemonStatus.CanPlan(2));
            StringAssert.Contains("protocol 1.0, which cannot plan: update coarse2real", DaemonStatus.CannotPlan(1, 0));
        }

        [Test]
        public void DescribeListsWhatTheDaemonServes()
        {
            string text = DaemonStatus.Describe("0.2.0", 1, 0, "cuda:0", new[] { "tiny" }, new[] { "preview", "final" }, new[] { "H100 80 GiB" });
            StringAssert.Contains("models: tiny", text);
            StringAssert.Contains("quality presets: preview, final", text);
            StringAssert.Contains("H100", text);
        }
    }

    public class CaptureOrientationTests
    {
        const int Height = 8;

        /// <summary>Image row (0 = bottom) held by each memory row of the depth copy, for one platform.</summary>
        static int[] CopyRows(bool uvStartsAtTop, bool sourceFlipped, Func<bool, bool, bool> flipRule)
        {
            // Source memory: bottom-first when rendered with the flipped projection, or on OpenGL; else top-first.
            bool sourceBottomFirst = sourceFlipped || !uvStartsAtTop;
            var output = new int[Height];
            for (int row = 0; row < Height; row++)
            {
                double y = uvStartsAtTop ? 1.0 - (row + 0.5) / Height : (row + 0.5) / Height; // where clip space puts this row
                double v = flipRule(uvStartsAtTop, sourceFlipped) ? 1.0 - y : y;
                int sourceRow = (int)Math.Floor(v * Height);
                output[row] = sourceBottomFirst ? sourceRow : Height - 1 - sourceRow;
            }
            return output;
        }

        static readonly int[] ColourRows = { 0, 1, 2, 3, 4, 5, 6, 7 }; // the camera's render into a texture: bottom row first

        [TestCase(false, false)] // OpenGL / GLES
        [TestCase(true, true)]   // D3D11/12, Metal, Vulkan: camera textures rendered flipped into an offscreen target
        [TestCase(true, false)]  // the same APIs, a source rendered without the flip
        public void DepthRowsMatchTheColourRowsOnEveryApi(bool uvStartsAtTop, bool sourceFlipped)
        {
            CollectionAssert.AreEqual(ColourRows, CopyRows(uvStartsAtTop, sourceFlipped, CaptureOrientation.FlipSampleY));
        }

        [Test]
        public void FlippingOnUvAtTopAloneIsWrongForAnUnflippedSource()
        {
            // What GetFullScreenTriangleTexCoord does (flip whenever UNITY_UV_STARTS_AT_TOP): upside down here.
            int[] rows = CopyRows(true, false, (uvTop, flipped) => uvTop);
            CollectionAssert.AreEqual(new[] { 7, 6, 5, 4, 3, 2, 1, 0 }, rows);
        }
    }

    public class ColorEncodingTests
    {
        [TestCase(1f, 0x3C00)]
        [TestCase(0.5f, 0x3800)]
        [TestCase(0f, 0x0000)]
        [TestCase(-2f, 0xC000)]
        [TestCase(65504f, 0x7BFF)]
        [TestCase(70000f, 0x7C00)]
        [TestCase(6.1e-5f, 0x03FF)]
        [TestCase(3e-6f, 0x0032)]
        [TestCase(1e-8f, 0x0000)]
        [TestCase(1.00146484375f, 0x3C02)]
        [TestCase(1.00048828125f, 0x3C00)] // a tie rounds to even
        public void HalfBitsMatchIeee754(float value, int bits)
        {
            Assert.AreEqual((ushort)bits, ColorEncoding.ToHalf(value));
        }

        [Test]
        public void SrgbBytesBecomeLinearHalfRgbaWithOpaqueAlpha()
        {
            byte[] rgb = { 0, 1, 128, 200, 255, 255 };
            byte[] half = ColorEncoding.SrgbToLinearHalfRgba(rgb, 2, 1);
            Assert.AreEqual(16, half.Length);
            Func<int, ushort> At = i => (ushort)(half[i * 2] | (half[i * 2 + 1] << 8));
            CollectionAssert.AreEqual(new ushort[] { 0x0000, 0x0CF9, 0x32E8, 0x3C00, 0x389F, 0x3C00, 0x3C00, 0x3C00 },
                                      new[] { At(0), At(1), At(2), At(3), At(4), At(5), At(6), At(7) });
            Assert.Throws<ArgumentException>(() => ColorEncoding.SrgbToLinearHalfRgba(rgb, 3, 1));
        }
    }
}
