using System;
using NUnit.Framework;

namespace Coarse2Real.Core.Tests
{
    public class SharedRingLayoutTests
    {
        static PackedPlane Plane(int bytes, byte fill) => new PackedPlane(PlaneDType.UInt8, new uint[] { (uint)bytes }, Filled(bytes, fill));

        static byte[] Filled(int n, byte v)
        {
            var a = new byte[n];
            for (int i = 0; i < n; i++) a[i] = v;
            return a;
        }

        [Test]
        public void PlanesStartAtTheNextMultipleOf64InOrder()
        {
            long needed;
            long[] offsets = SharedRingLayout.Offsets(new[] { Plane(100, 1), Plane(64, 2), null, Plane(1, 3) }, out needed);
            CollectionAssert.AreEqual(new long[] { 0, 128, -1, 192 }, offsets);
            Assert.AreEqual(256, needed);
        }

        [Test]
        public void WriteCopiesIntoTheSlotAndRefusesWhatDoesNotFit()
        {
            var ring = new SharedRingLayout(2, 256);
            var segment = new byte[ring.SegmentBytes];
            Action<long, byte[]> write = (at, data) => Buffer.BlockCopy(data, 0, segment, (int)at, data.Length);
            long[] offsets = ring.Write(write, 1, new[] { Plane(100, 7), Plane(10, 9) });
            Assert.AreEqual(7, segment[256 + 99]);
            Assert.AreEqual(0, segment[256 + 100]);
            Assert.AreEqual(9, segment[256 + offsets[1]]);
            Assert.AreEqual(0, segment[0]); // slot 0 untouched
            var error = Assert.Throws<ArgumentException>(() => ring.Write(write, 0, new[] { Plane(300, 1) }));
            StringAssert.Contains("larger slot size", error.Message);
        }

        [Test]
        public void ALinuxSegmentIsAPrivateFileInDevShmAndGoesAwayOnDispose()
        {
            if (!SharedRingSegment.Supported || !System.IO.Directory.Exists("/dev/shm"))
            {
                Assert.Ignore("no /dev/shm here"); // Windows maps by name; covered by the conformance test where it runs
            }
            string name = SharedRingSegment.NewName();
            StringAssert.StartsWith("c2r-" + System.Diagnostics.Process.GetCurrentProcess().Id + "-", name);
            using (SharedRingSegment segment = SharedRingSegment.Create(name, 128))
            {
                segment.Write(64, new byte[] { 1, 2, 3 });
                byte[] onDisk = System.IO.File.ReadAllBytes("/dev/shm/" + name);
                Assert.AreEqual(128, onDisk.Length);
                CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, new[] { onDisk[64], onDisk[65], onDisk[66] });
                Assert.Throws<ArgumentOutOfRangeException>(() => segment.Write(127, new byte[] { 1, 2 }));
            }
            Assert.IsFalse(System.IO.File.Exists("/dev/shm/" + name));
            Assert.Throws<ArgumentException>(() => SharedRingSegment.Create("../etc/x", 64));
        }

        [Test]
        public void SlotsAreLentUntilTheDaemonReleasesThem()
        {
            var ring = new SharedRingLayout(2, 64);
            Assert.AreEqual(0, ring.Take());
            Assert.AreEqual(1, ring.Take());
            Assert.AreEqual(-1, ring.Take()); // both with the daemon: wait
            ring.Release(new uint[] { 1 });
            Assert.AreEqual(1, ring.Take());
            Assert.Throws<InvalidOperationException>(() => ring.Release(new uint[] { 1, 1 }));
        }
    }
}

