using System;
using System.Collections.Generic;

namespace Coarse2Real.Core
{
    /// <summary>
    /// What the window tells the user about the daemon: GetInfo's answer checked against this
    /// package's protocol, and gRPC failures turned into what to do. Plain values in, text out, so
    /// the rules are tested without gRPC (status codes by their grpc-dotnet names).
    /// </summary>
    public static class DaemonStatus
    {
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
