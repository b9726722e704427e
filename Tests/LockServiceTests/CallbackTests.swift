import Foundation
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import NLM
import ONCRPC
import RPCTransport
import SwiftNFSTesting
import Testing
import XDR

/// Blocked locks and the calls the server makes back to clients (GRANTED, the _RES answers of
/// _MSG calls, SM_NOTIFY after a restart), received by a client host's stub lock manager and
/// status monitor registered with the server's portmapper.
@Suite struct CallbackTests {
    static var options: TestServerOptions {
        var o = TestServerOptions()
        o.portmapper = true
        return o
    }

    @Test("a blocked LOCK is granted when the holder unlocks: GRANTED reaches the waiting client with its lock",
          arguments: [UInt32(1), 4])
    func blockedWaiterIsGranted(version: UInt32) async throws {
        try await withTestServer(Self.options) { server, client, root in
            let stub = try await LockPeerStub.start()
            try await stub.register(portmapPort: try #require(server.portmapPort))
            let file = try await makeFile(client, root)
            let a = try await LockingHost.connect("host-a", to: server, version: version)
            let b = try await LockingHost.connect("host-b", to: server, version: version)
            #expect(try await a.nlm.lock(a.lock(file, 0, 100), exclusive: true) == .granted)
            let wanted = b.lock(file, 50, 10, svid: 9)
            #expect(try await b.nlm.lock(wanted, exclusive: true, block: true) == .blocked)
            #expect(try await a.nlm.unlock(a.lock(file, 0, 100)) == .granted)
            let granted = try await stub.next(NLM.program, NLM.Procedure.granted.rawValue)
            var args = granted.arguments
            let g = try args.readNLMLockArguments(.test, version: version)
            #expect(granted.version == version && g.exclusive)
            #expect(g.lock.fileHandle == wanted.fileHandle && g.lock.ownerHandle == wanted.ownerHandle)
            #expect(g.lock.svid == 9 && g.lock.offset == 50 && g.lock.length == 10)
            #expect(granted.from?.ipAddress == "127.0.0.1")
            // b holds it now.
            #expect(try await a.nlm.test(a.lock(file, 55, 1), exclusive: false).0 == .denied)
            await stub.close()
        }
    }

    @Test("a waiter that answers GRANTED with denied (it gave up) does not keep the lock")
    func refusedGrantIsReleased() async throws {
        try await withTestServer(Self.options) { server, client, root in
            let stub = try await LockPeerStub.start()
            try await stub.register(portmapPort: try #require(server.portmapPort))
            stub.grantedAnswer.withLockedValue { $0 = .denied }
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            #expect(try await b.nlm.lock(b.lock(file), exclusive: true, block: true) == .blocked)
            #expect(try await a.nlm.unlock(a.lock(file)) == .granted)
            _ = try await stub.next(NLM.program, NLM.Procedure.granted.rawValue)
            // The refusal is handled once the GRANTED call returns: poll for the lock to be free.
            var status = NLM.Status.denied
            for _ in 0..<100 where status != .granted {
                status = try await a.nlm.test(a.lock(file), exclusive: true).0
                if status != .granted { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(status == .granted)
        }
    }

    @Test("CANCEL withdraws a blocked request: the lock is never granted to it")
    func cancelledWaiter() async throws {
        try await withTestServer(Self.options) { server, client, root in
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            let c = try await LockingHost.connect("host-c", to: server)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            #expect(try await b.nlm.lock(b.lock(file), exclusive: true, block: true) == .blocked)
            #expect(try await b.nlm.cancel(b.lock(file), exclusive: true) == .granted)
            #expect(try await b.nlm.cancel(b.lock(file), exclusive: true) == .denied)
            #expect(try await a.nlm.unlock(a.lock(file)) == .granted)
            #expect(try await c.nlm.lock(c.lock(file), exclusive: true) == .granted)
        }
    }

    @Test("LOCK_MSG and TEST_MSG are answered by LOCK_RES and TEST_RES calls with the cookie")
    func asynchronousForms() async throws {
        try await withTestServer(Self.options) { server, client, root in
            let stub = try await LockPeerStub.start()
            try await stub.register(portmapPort: try #require(server.portmapPort))
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            try await a.nlm.message(.lockMessage, NLMLockArguments(cookie: [0xAA], exclusive: true, lock: a.lock(file)))
            var res = try await stub.next(NLM.program, NLM.Procedure.lockResult.rawValue).arguments
            #expect(try res.readNLMResult() == ([0xAA], .granted))
            try await b.nlm.message(.testMessage, NLMLockArguments(cookie: [0xBB], exclusive: false, lock: b.lock(file, 5, 5)))
            var test = try await stub.next(NLM.program, NLM.Procedure.testResult.rawValue).arguments
            let (cookie, status, holder) = try test.readNLMTestResult(version: 4)
            #expect(cookie == [0xBB] && status == .denied && holder?.svid == 1)
        }
    }

    @Test("SM_NOTIFY from a client that restarted releases its locks")
    func rebootedClientLosesItsLocks() async throws {
        try await withTestServer { server, client, root in
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            let nsm = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
                                                  transport: .udp, group: MultiThreadedEventLoopGroup.singleton)
            var args = ByteBuffer()
            args.writeNSMStatusChange(host: "host-a", state: 5)
            _ = try await nsm.call(program: NSM.program, version: NSM.version, procedure: NSM.Procedure.notify.rawValue, arguments: args)
            #expect(try await b.nlm.lock(b.lock(file), exclusive: true) == .granted)
            // SM_STAT: the server's own state, odd while it runs.
            var stat = ByteBuffer()
            stat.writeXDRString("anyone")
            var reply = try await nsm.call(program: NSM.program, version: NSM.version, procedure: NSM.Procedure.stat.rawValue,
                                           arguments: stat)
            #expect(try reply.readXDRUInt32() == 0)
            #expect(try reply.readXDRInt32() % 2 == 1)
            await nsm.close()
        }
    }

    @Test("a local lock manager that monitors a host (SM_MON) is called back when the host restarts, from a reserved port")
    func localMonitorCallback() async throws {
        try await withTestServer(Self.options) { server, _, _ in
            let stub = try await LockPeerStub.start()
            try await stub.register(portmapPort: try #require(server.portmapPort))
            let nsm = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
                                                  transport: .udp, group: MultiThreadedEventLoopGroup.singleton)
            var mon = ByteBuffer()
            mon.writeNSMMonitor(NSMMonitor(host: "host-x", callback: NSMCallback(name: "me", program: NLM.program, version: 3,
                                                                                 procedure: 16), cookie: Array(1...16)))
            var reply = try await nsm.call(program: NSM.program, version: NSM.version, procedure: NSM.Procedure.monitor.rawValue,
                                           arguments: mon)
            #expect(try reply.readXDRUInt32() == 0)
            var notify = ByteBuffer()
            notify.writeNSMStatusChange(host: "host-x", state: 7)
            _ = try await nsm.call(program: NSM.program, version: NSM.version, procedure: NSM.Procedure.notify.rawValue,
                                   arguments: notify)
            let call = try await stub.next(NLM.program, 16)
            var args = call.arguments
            #expect(try args.readNSMStatusChange() == ("host-x", 7))
            #expect(Array(args.readableBytesView) == Array(1...16))
            #expect((call.from?.port ?? 65535) < 1024, "from \(String(describing: call.from))")
            await nsm.close()
            await stub.close()
        }
    }

    @Test("an unreadable status monitor file is set aside and the server starts, with locking")
    func unreadableMonitorFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        try Data("not a monitor file".utf8).write(to: URL(fileURLWithPath: directory + "/state/nsm-state"))
        var options = TestServerOptions()
        options.directory = directory
        try await withTestServer(options) { server, client, root in
            let (file, a, _) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/state/nsm-state.unreadable"))
    }

    @Test("after a restart the server notifies the clients that held locks; in the grace period only their reclaims are granted")
    func restartNotifiesAndReclaims() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = Self.options
        options.directory = directory
        options.lockGracePeriod = .seconds(3)
        let stub = try await LockPeerStub.start()
        let file = try await withTestServer(options) { server, client, root in
            try await stub.register(portmapPort: try #require(server.portmapPort))
            let file = try await makeFile(client, root)
            let a = try await LockingHost.connect("host-a", to: server)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            return file
        }
        try await withTestServer(options) { server, _, _ in
            // The local registrations survived the restart, as rpcbind's warm start keeps them.
            let notice = try await stub.next(NSM.program, NSM.Procedure.notify.rawValue)
            var args = notice.arguments
            let (name, state) = try args.readNSMStatusChange()
            #expect(name == "127.0.0.1" && state == 3)
            let a = try await LockingHost.connect("host-a", to: server)
            let b = try await LockingHost.connect("host-b", to: server)
            #expect(try await b.nlm.lock(b.lock(file), exclusive: true) == .deniedGracePeriod)
            #expect(try await b.nlm.test(b.lock(file), exclusive: true).0 == .deniedGracePeriod)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true, reclaim: true) == .granted)
            // After the grace period the reclaimed lock still conflicts.
            var status = NLM.Status.deniedGracePeriod
            for _ in 0..<100 where status == .deniedGracePeriod {
                status = try await b.nlm.lock(b.lock(file), exclusive: true)
                if status == .deniedGracePeriod { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(status == .denied)
        }
        await stub.close()
    }
}
