// Writes the planes the package's Core (PlanePacker, DepthConversion) packs from a set of readbacks
// defined by formula, so tests/test_unity_conformance.py can check them byte for byte against its
// Python reference and replay them to a real daemon. Not part of the Unity package build (the folder
// ends in ~, which Unity skips). Build: mcs -out:PackFixture.exe Runtime/Core/*.cs Tests/Conformance~/PackFixture.cs
// Run: mono PackFixture.exe <output folder> <frames> <height> <width> [ring name]
// With a ring name the frames also go into a shared-memory ring (SharedRingSegment + SharedRingLayout),
// frame i in slot i, and <output folder>/ring.txt says "name slots slot_bytes" then each frame's offsets.
// The segment is left for the daemon to map and unlink (the session that names it is the test's).
// Or: mono PackFixture.exe describe-plan <answer file> <output file>: the answer file (UTF-8 lines) holds
// frames, width, height, fits (true/false), summary, advice of a real Plan reply; the output file gets
// what the window's plan box shows for it (DaemonStatus.PlanSubject + DescribePlan).
using System;
using System.IO;
using System.Text;
using Coarse2Real.Core;

public static class PackFixture
{
    public const float Near = 0.125f, Far = 128f; // exact in float and double: no conversion differences

    public static int Main(string[] args)
    {
        if (args[0] == "describe-plan")
        {
            string[] answer = File.ReadAllLines(args[1], Encoding.UTF8);
            string subject = DaemonStatus.PlanSubject(long.Parse(answer[0]), long.Parse(answer[1]), long.Parse(answer[2]));
            File.WriteAllText(args[2], DaemonStatus.DescribePlan(subject, bool.Parse(answer[3]), answer[4], answer[5]), new UTF8Encoding(false));
            return 0;
        }
        string folder = args[0];
        int frames = int.Parse(args[1]), height = int.Parse(args[2]), width = int.Parse(args[3]);
        Directory.CreateDirectory(folder);
        var packed = new PackedPlane[frames][];
        for (int i = 0; i < frames; i++)
        {
            var rgba = new byte[height * width * 4];
            var depth = new float[height * width];
            var normals = new ushort[height * width * 4];
            for (int y = 0; y < height; y++) // y: readback row, 0 = the bottom of the image
            {
                for (int x = 0; x < width; x++)
                {
                    int p = y * width + x;
                    rgba[p * 4] = (byte)((x * 7 + y * 3 + i) % 256);
                    rgba[p * 4 + 1] = (byte)((x + y * 5) % 256);
                    rgba[p * 4 + 2] = (byte)((i * 11 + x * y) % 256);
                    rgba[p * 4 + 3] = 255;
                    depth[p] = y >= height - 4 ? 0f : (1 + y + i) / 64f; // reversed Z; cleared (0) in the top rows: sky
                    normals[p * 4] = ColorEncoding.ToHalf((x % 4) / 4f);
                    normals[p * 4 + 1] = ColorEncoding.ToHalf(-(y % 2) / 2f);
                    normals[p * 4 + 2] = ColorEncoding.ToHalf(1f);
                    normals[p * 4 + 3] = ColorEncoding.ToHalf(1f);
                }
            }
            DepthConversion.EyeDepthsFromDevice(depth, Near, Far, reversedZ: true);
            packed[i] = new[] { PlanePacker.ColorFromRgba32(rgba, width, height), PlanePacker.DepthFromFloats(depth, width, height),
                                PlanePacker.RgbFromRgbaHalf(normals, width, height) };
            Write(folder, i, "color", packed[i][0]);
            Write(folder, i, "depth", packed[i][1]);
            Write(folder, i, "normals", packed[i][2]);
        }
        if (args.Length > 4)
        {
            WriteRing(folder, args[4], packed);
        }
        return 0;
    }

    static void WriteRing(string folder, string name, PackedPlane[][] frames)
    {
        long slotBytes;
        SharedRingLayout.Offsets(frames[0], out slotBytes);
        var layout = new SharedRingLayout(frames.Length, slotBytes);
        SharedRingSegment segment = SharedRingSegment.Create(name, layout.SegmentBytes); // not disposed: the daemon unlinks it
        var lines = new System.Collections.Generic.List<string> { $"{name} {layout.Slots} {layout.SlotBytes}" };
        foreach (PackedPlane[] planes in frames)
        {
            int slot = layout.Take();
            lines.Add(slot + " " + string.Join(" ", layout.Write(segment.Write, slot, planes)));
        }
        File.WriteAllLines(Path.Combine(folder, "ring.txt"), lines);
    }

    static void Write(string folder, int frame, string plane, PackedPlane packed)
    {
        File.WriteAllBytes(Path.Combine(folder, $"{frame:D4}.{plane}.{(int)packed.DType}.{string.Join("x", packed.Shape)}.bin"), packed.Data);
    }
}
