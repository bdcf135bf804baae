using System;
using System.Collections.Generic;

namespace Coarse2Real.Core
{
    /// <summary>
    /// What the window tells the user about the daemon: GetInfo's answer checked against this
    /// package's protocol, Plan's answer, and gRPC failures turned into what to do. Plain values in,
    /// text out, so the rules are tested without gRPC (status codes by their grpc-dotnet names).
    /// </summary>
    public static class DaemonStatus
    {
        /// <summary>
        /// The protocol minor this package speaks: 1 added the Plan call, 2 batches. Of 1.2 the package takes the
        /// daemon's side: it asks for ResultBatch (SessionConfig.Batches; a window's results and each estimate's
        /// previews several to a message, less daemon CPU per frame) and reads both kinds. It sends one Frame per
        /// message, as before: it captures one frame at a time, so nothing queues up to batch.
        /// </summary>
        public const uint ProtocolMinor = 2;

        /// <summary>The first protocol minor whose daemons answer Plan.</summary>
        public const uint PlanSinceMinor = 1;

        /// <summary>The first protocol minor whose daemons send ResultBatch (to a client that asks).</summary>
        public const uint BatchesSinceMinor = 2;

        public static bool CanPlan(uint daemonMinor) => daemonMinor >= PlanSinceMinor;

        /// <summary>What a plan is for: "81 frames at 640x360" (0 frames: one window).</summary>
        public static string PlanSubject(long frames, long width, long height) =>
            (frames > 1 ? $"{frames} frames" : frames == 1 ? "1 frame" : "one window") + $" at {width}x{height}";

        /// <summary>Plan's answer as the window shows it: the daemon's sentence, and what to lower when it does not fit.</summary>
        public static string DescribePlan(string subject, bool fits, string summary, string advice)
        {
            string text = $"For {subject}: {summary}";
            return fits || string.IsNullOrEmpty(advice) ? text : text + "\n" + advice;
        }

        /// <summary>Why a daemon of protocol <paramref name="major"/>.<paramref name="minor"/> shows no plan, and what to do.</summary>
        public static string CannotPlan(uint major, uint minor) =>
            $"the daemon speaks protocol {major}.{minor}, which cannot plan: update coarse2real where it runs to see here whether these settings fit its GPU";

        /// <summary>Null when the daemon's protocol major matches; else why not and what to do.</summary>
        public static string VersionProblem(uint daemonMajor, uint daemonMinor, uint clientMajor, uint clientMinor, string address)
        {
            if (daemonMajor == clientMajor)
            {
                return null;
            }
            return $"the daemon at {address} speaks protocol {daemonMajor}.{daemonMinor}, this package {clientMajor}.{clientMinor}: " +
                   "install the same coarse2real major version on both sides";
        }

        public static string Describe(string daemonVersion, uint major, uint minor, string device, IList<string> models, IList<string> qualities, IList<string> gpus)
        {
            string gpuText = gpus.Count == 0 ? "no GPU (CPU)" : string.Join(", ", gpus);
            string modelText = models.Count == 0 ? "(none listed)" : string.Join(", ", models);
            string qualityText = qualities.Count == 0 ? "(none listed)" : string.Join(", ", qualities);
            return $"daemon {daemonVersion} (protocol {major}.{minor}) on {device}; {gpuText}\nmodels: {modelText}\nquality presets: {qualityText}";
        }

        /// <summary>A failed call, as the user should read it: the cause in words and the next step.</summary>
        public static string Friendly(string statusCode, string detail, string address)
        {
            switch (statusCode)
            {
                case "Unavailable":
                    return $"no coarse2real daemon answers at {address}: start one with `c2r serve` (or `c2r serve --port N` and set that port here)";
                case "Unauthenticated":
                case "PermissionDenied":
                    return $"the daemon at {address} refused the token: set the one it was started with (c2r serve --token)";
                case "DeadlineExceeded":
                    return $"the daemon at {address} did not answer in time: is it busy loading a model? try again, or check its log";
                case "Cancelled":
                    return "cancelled";
                default:
                    return $"the daemon at {address} ended the call ({statusCode}): {detail}";
            }
        }
    }
}
