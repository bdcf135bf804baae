using System;
using System.Collections.Generic;

namespace Coarse2Real.Core
{
    /// <summary>
    /// The same-host frame ring's slot layout (coarse2real.proto, "same-host shared memory"), written
    /// exactly as the Python client writes it: slot i is segment bytes [i * slotBytes, (i + 1) * slotBytes);
    /// a frame's planes go in the order colour, depth, normals, each at the next multiple of 64 from the
    /// slot's start (colour at 0), with the same bytes Plane.data would carry. And the slots' ownership:
    /// the client's until a Frame names one, the daemon's until SlotsReleased lists it.
    /// </summary>
    public sealed class SharedRingLayout
    {
        public const int Align = 64;

        public SharedRingLayout(int slots, long slotBytes)
        {
            if (slots < 1 || slotBytes < Align || slotBytes % Align != 0)
            {
                throw new ArgumentException($"ring of {slots} slots of {slotBytes} bytes: need at least one slot and a slot size that is a positive multiple of {Align}");
            }
            Slots = slots;
            SlotBytes = slotBytes;
            for (int i = slots - 1; i >= 0; i--)
            {
                free.Push(i);
            }
        }

        readonly Stack<int> free = new Stack<int>();
        readonly HashSet<int> lent = new HashSet<int>();

        public int Slots { get; }
        public long SlotBytes { get; }
        public long SegmentBytes => Slots * SlotBytes;

        public static long Aligned(long bytes) => (bytes + Align - 1) / Align * Align;

        /// <summary>Where each plane starts in a slot (null planes take no room), and the slot size they need.</summary>
        public static long[] Offsets(IList<PackedPlane> planes, out long bytesNeeded)
        {
            var offsets = new long[planes.Count];
            long next = 0;
            for (int i = 0; i < planes.Count; i++)
            {
                if (planes[i] == null)
                {
                    offsets[i] = -1;
                    continue;
                }
                offsets[i] = next;
                next = Aligned(next + planes[i].Data.Length);
            }
            bytesNeeded = next;
            return offsets;
        }

        /// <summary>A free slot for the next frame, or -1 when the daemon still holds them all (wait for SlotsReleased).</summary>
        public int Take()
        {
            if (free.Count == 0)
            {
                return -1;
            }
            int slot = free.Pop();
            lent.Add(slot);
            return slot;
        }

        /// <summary>The daemon copied these out (SlotsReleased): they may be written again.</summary>
        public void Release(IEnumerable<uint> slots)
        {
            foreach (uint slot in slots)
            {
                if (!lent.Remove((int)slot))
                {
                    throw new InvalidOperationException($"the daemon released slot {slot}, which this client had not handed over; the ring's state is broken: end the session");
                }
                free.Push((int)slot);
            }
        }

        /// <summary>Copy <paramref name="planes"/> into <paramref name="slot"/> through <paramref name="write"/>(segment offset, bytes); returns their offsets in the slot.</summary>
        public long[] Write(Action<long, byte[]> write, int slot, IList<PackedPlane> planes)
        {
            long needed;
            long[] offsets = Offsets(planes, out needed);
            if (needed > SlotBytes)
            {
                throw new ArgumentException($"the frame's planes need {needed} bytes, a slot has {SlotBytes}: open the session with a larger slot size");
            }
            if (slot < 0 || slot >= Slots)
            {
                throw new ArgumentOutOfRangeException(nameof(slot), slot, $"the ring has slots 0..{Slots - 1}");
            }
            long start = slot * SlotBytes;
            for (int i = 0; i < planes.Count; i++)
            {
                if (planes[i] != null)
                {
                    write(start + offsets[i], planes[i].Data);
                }
            }
            return offsets;
        }
    }
}
