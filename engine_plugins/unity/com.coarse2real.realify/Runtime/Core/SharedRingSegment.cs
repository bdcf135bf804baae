using System;
using System.Diagnostics;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Coarse2Real.Core
{
    /// <summary>
    /// The shared-memory segment of a frame ring, made the way the daemon opens it (coarse2real.proto,
    /// "same-host shared memory": what Python's multiprocessing.shared_memory.SharedMemory(name) opens):
    /// on Linux the POSIX segment <c>/dev/shm/NAME</c>, a file on tmpfs, mode 0600; on Windows the named
    /// file mapping NAME (<c>MemoryMappedFile.CreateNew</c>, .NET Standard 2.1, which Unity 2021.2+ has).
    /// macOS keeps POSIX segments out of the file system (shm_open only), so there the package sends
    /// bytes in the stream (<see cref="Supported"/> is false). Names are <c>c2r-&lt;pid&gt;-&lt;random&gt;</c>: the
    /// daemon sweeps the segments of dead processes by that pid. The daemon unlinks the name once it has
    /// mapped it; <see cref="Dispose"/> unlinks it too, so a refused or crashed session leaks nothing.
    /// </summary>
    public sealed class SharedRingSegment : IDisposable
    {
        const string LinuxFolder = "/dev/shm";
        readonly MemoryMappedFile mapping;
        readonly MemoryMappedViewAccessor view;
        readonly string path; // Linux only

        SharedRingSegment(string name, long bytes, MemoryMappedFile mapping, string path)
        {
            Name = name;
            Bytes = bytes;
            this.mapping = mapping;
            this.path = path;
            view = mapping.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.ReadWrite);
        }

        public string Name { get; }
        public long Bytes { get; }

        public static bool Supported =>
            RuntimeInformation.IsOSPlatform(OSPlatform.Windows) || (RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && Directory.Exists(LinuxFolder));

        public static string NewName(int? pid = null)
        {
            var random = new byte[6];
            new Random().NextBytes(random);
            return $"c2r-{pid ?? Process.GetCurrentProcess().Id}-{BitConverter.ToString(random).Replace("-", "").ToLowerInvariant()}";
        }

        public static SharedRingSegment Create(string name, long bytes)
        {
            if (!name.StartsWith("c2r-", StringComparison.Ordinal) || name.IndexOfAny(new[] { '/', '\\', '\0' }) >= 0)
            {
                throw new ArgumentException($"shared-memory name '{name}': the daemon only maps names c2r-<pid>-<random>");
            }
            if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                return new SharedRingSegment(name, bytes, MemoryMappedFile.CreateNew(name, bytes, MemoryMappedFileAccess.ReadWrite), null);
            }
            if (!Supported)
            {
                throw new PlatformNotSupportedException("no POSIX shared-memory folder on this system: frames go as bytes in the stream");
            }
            string file = Path.Combine(LinuxFolder, name);
            var stream = new FileStream(file, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
            try
            {
                if (chmod(file, Convert.ToUInt32("600", 8)) != 0) // before a byte of any frame is in it
                {
                    throw new IOException($"could not make {file} private (chmod 0600 failed, errno {Marshal.GetLastWin32Error()})");
                }
                stream.SetLength(bytes);
                var mapping = MemoryMappedFile.CreateFromFile(stream, null, bytes, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, false);
                return new SharedRingSegment(name, bytes, mapping, file);
            }
            catch
            {
                stream.Dispose();
                File.Delete(file);
                throw;
            }
        }

        [DllImport("libc", SetLastError = true)]
        static extern int chmod(string path, uint mode);

        public void Write(long offset, byte[] data)
        {
            if (offset < 0 || offset + data.Length > Bytes)
            {
                throw new ArgumentOutOfRangeException(nameof(offset), $"{data.Length} bytes at {offset} do not fit the {Bytes}-byte segment {Name}");
            }
            view.WriteArray(offset, data, 0, data.Length);
        }

        public void Dispose()
        {
            view.Dispose();
            mapping.Dispose();
            if (path != null && File.Exists(path))
            {
                File.Delete(path); // the daemon normally did this already, right after mapping
            }
        }
    }
}
