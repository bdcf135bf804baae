using System;
using System.Net;

namespace Coarse2Real.Core
{
    /// <summary>
    /// A daemon address as the window takes it: <c>host:port</c>, with IPv6 hosts in brackets
    /// (<c>[::1]:50051</c>). Loopback means this machine (<c>localhost</c>, 127.0.0.0/8, <c>::1</c>): the daemon
    /// binds 127.0.0.1 by default and needs no token there; any other host must be given the token
    /// it was started with (<c>c2r serve --token</c>).
    /// </summary>
    public sealed class DaemonAddress
    {
        DaemonAddress(string host, int port)
        {
            Host = host;
            Port = port;
        }

        public string Host { get; }
        public int Port { get; }

        /// <summary>The URI grpc-dotnet connects to (cleartext HTTP/2).</summary>
        public string Uri => Host.Contains(":") ? $"http://[{Host}]:{Port}" : $"http://{Host}:{Port}";

        public bool IsLoopback
        {
            get
            {
                if (string.Equals(Host, "localhost", StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
                return IPAddress.TryParse(Host, out IPAddress ip) && IPAddress.IsLoopback(ip);
            }
        }

        public static DaemonAddress Parse(string address)
        {
            string text = (address ?? "").Trim();
            string host;
            string port;
            if (text.StartsWith("["))
            {
                int close = text.IndexOf(']');
                if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
                {
                    throw new ArgumentException($"daemon address '{address}': write an IPv6 host in brackets with a port, e.g. [::1]:50051");
                }
                host = text.Substring(1, close - 1);
                port = text.Substring(close + 2);
            }
            else
            {
                int colon = text.LastIndexOf(':');
                if (colon <= 0 || text.IndexOf(':') != colon)
                {
                    throw new ArgumentException($"daemon address '{address}': write host:port, e.g. 127.0.0.1:50051 (IPv6 as [::1]:50051)");
                }
                host = text.Substring(0, colon);
                port = text.Substring(colon + 1);
            }
            if (!int.TryParse(port, out int number) || number < 1 || number > 65535)
            {
                throw new ArgumentException($"daemon address '{address}': port '{port}' is not a number from 1 to 65535");
            }
            return new DaemonAddress(host, number);
        }

        /// <summary>Refuse a remote daemon without a token, before any connection is made.</summary>
        public void RequireTokenIfRemote(string token)
        {
            if (!IsLoopback && string.IsNullOrEmpty(token))
            {
                throw new ArgumentException($"daemon address {Host}:{Port} is not this machine: set the token the daemon was started with (--token)");
            }
        }
    }
}
