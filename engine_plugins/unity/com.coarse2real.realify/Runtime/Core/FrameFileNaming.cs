using System;
using System.IO;
using System.Text;

namespace Coarse2Real.Core
{
    /// <summary>
    /// Names of written sequences: <c>{prefix}.{frame:0000}.{ext}</c>, the pattern Unreal's
    /// Movie Render Queue, Blender and compositors read as an image sequence. The prefix is
    /// made safe for every file system (no separators, no dots, which would confuse frame parsing).
    /// </summary>
    public static class FrameFileNaming
    {
        public const int FrameDigits = 4;

        public static string SafePrefix(string name)
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                return "realified";
            }
            var invalid = Path.GetInvalidFileNameChars();
            var safe = new StringBuilder(name.Length);
            foreach (char c in name.Trim())
            {
                safe.Append(c == '.' || c == ' ' || Array.IndexOf(invalid, c) >= 0 || c == '/' || c == '\\' || c == ':' ? '_' : c);
            }
            return safe.ToString();
        }

        public static string FileName(string prefix, int frame, string extension)
        {
            if (frame < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(frame), frame, "frame numbers start at 0; offset the Timeline range first");
            }
            string ext = extension.TrimStart('.').ToLowerInvariant();
            if (ext != "png" && ext != "exr")
            {
                throw new ArgumentException($"extension '{extension}': write 'png' or 'exr' sequences");
            }
            return $"{SafePrefix(prefix)}.{frame.ToString().PadLeft(FrameDigits, '0')}.{ext}";
        }

        /// <summary>The frame number of a file written by <see cref="FileName"/>, or -1 for any other file.</summary>
        public static int ParseFrame(string fileName, string prefix)
        {
            string name = Path.GetFileName(fileName);
            string head = SafePrefix(prefix) + ".";
            if (!name.StartsWith(head, StringComparison.Ordinal))
            {
                return -1;
            }
            string[] rest = name.Substring(head.Length).Split('.');
            return rest.Length == 2 && int.TryParse(rest[0], out int frame) && frame >= 0 ? frame : -1;
        }
    }
}
