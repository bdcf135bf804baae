using System;
using NUnit.Framework;

namespace Coarse2Real.Core.Tests
{
    public class SessionProtocolTests
    {
        static RealifySessionProtocol Started()
        {
            var protocol = new RealifySessionProtocol();
            protocol.Open();
            protocol.Receive(ServerMessageKind.Started);
            return protocol;
        }

        [Test]
        public void ConfigFramesEndThenDone()
        {
            var protocol = new RealifySessionProtocol();
            Assert.AreEqual(ClientMessageKind.Config, protocol.Open());
            Assert.AreEqual(SessionState.Opening, protocol.State);
            protocol.Receive(ServerMessageKind.Started);
            Assert.AreEqual(ClientMessageKind.Frame, protocol.SendFrame(0));
            Assert.AreEqual(ClientMessageKind.Frame, protocol.SendFrame(1));
            Assert.AreEqual(ClientMessageKind.End, protocol.End());
            protocol.Receive(ServerMessageKind.Result, 0, preview: true);
            protocol.Receive(ServerMessageKind.Result, 0);
            protocol.Receive(ServerMessageKind.Result, 1);
            protocol.Receive(ServerMessageKind.Done);
            Assert.AreEqual(SessionState.Finished, protocol.State);
            Assert.AreEqual(2, protocol.FramesReturned); // the preview did not count
            Assert.AreEqual(2, protocol.NextResultIndex);
        }

        [Test]
        public void FramesBeforeStartedAreRefused()
        {
            var protocol = new RealifySessionProtocol();
            protocol.Open();
            var error = Assert.Throws<InvalidOperationException>(() => protocol.SendFrame(0));
            StringAssert.Contains("wait for SessionStarted", error.Message);
        }

        [Test]
        public void AGapInFrameIndicesIsRefused()
        {
            var protocol = Started();
            protocol.SendFrame(0);
            var error = Assert.Throws<InvalidOperationException>(() => protocol.SendFrame(2));
            StringAssert.Contains("expects 1 next", error.Message);
        }

        [Test]
        public void CancelStopsSendingAndIgnoresLateResults()
        {
            var protocol = Started();
            protocol.SendFrame(0);
            Assert.AreEqual(ClientMessageKind.Cancel, protocol.Cancel());
            Assert.IsNull(protocol.Cancel()); // twice is harmless
            Assert.Throws<InvalidOperationException>(() => protocol.SendFrame(1));
            protocol.Receive(ServerMessageKind.Result, 0);
            protocol.Fail("CANCELLED");
            Assert.AreEqual(SessionState.Cancelled, protocol.State);
            Assert.AreEqual(0, protocol.FramesReturned);
        }

        [Test]
        public void AnErrorStatusFailsALiveSession()
        {
            var protocol = Started();
            protocol.Fail("INVALID_ARGUMENT: frame 0 depth has shape (2, 3)");
            Assert.AreEqual(SessionState.Failed, protocol.State);
            StringAssert.Contains("INVALID_ARGUMENT", protocol.Error);
            Assert.IsTrue(protocol.IsOver);
        }

        [Test]
        public void AResultForAFrameNeverSentIsAProtocolError()
        {
            var protocol = Started();
            protocol.SendFrame(0);
            Assert.Throws<InvalidOperationException>(() => protocol.Receive(ServerMessageKind.Result, 5));
        }
    }

    public class FrameFileNamingTests
    {
        [Test]
        public void NamesArePaddedAndParseBack()
        {
            Assert.AreEqual("Main_Camera.0007.png", FrameFileNaming.FileName("Main Camera", 7, ".PNG"));
            Assert.AreEqual("shot_A.12345.exr", FrameFileNaming.FileName("shot.A", 12345, "exr"));
            Assert.AreEqual(7, FrameFileNaming.ParseFrame("/out/Main_Camera.0007.png", "Main Camera"));
            Assert.AreEqual(-1, FrameFileNaming.ParseFrame("/out/Other.0007.png", "Main Camera"));
            Assert.AreEqual(-1, FrameFileNaming.ParseFrame("/out/Main_Camera.final.png", "Main Camera"));
        }

        [Test]
        public void BadFramesAndExtensionsAreRefused()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => FrameFileNaming.FileName("a", -1, "png"));
            var error = Assert.Throws<ArgumentException>(() => FrameFileNaming.FileName("a", 1, "jpg"));
            StringAssert.Contains("'png' or 'exr'", error.Message);
        }
    }
}
