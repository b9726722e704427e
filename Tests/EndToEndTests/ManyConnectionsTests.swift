import Foundation
import Glibc
import NFS3
import NFS3Client
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC
import NIOPosix
import SwiftNFSTesting
import Testing

/// Many clients at once (issue 16): a thousand idle connections and sixty busy ones, against
/// the real binary. Every call is answered, the idle connections stay served, and the server's
/// memory stays bounded.
@Suite(.serialized) struct ManyConnectionsTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test("1,000 idle connections from 20 addresses and 60 writing ones: every call answered, the idle ones still served, resident memory bounded")
    func idleAndBusy() async throws {
        try await ServerProcess.with(portmap: .none) { server in
            // The idle ones, 50 from each of 20 loopback addresses (a client address may hold 64).
            var idle: [Int32] = []
            defer { for fd in idle { close(fd) } }
            for i in 0..<1000 {
                idle.append(try Self.connect(from: "127.0.1.\(1 + i / 50)", to: server.nfsPort))
            }
            let rssIdle = server.residentKiB

            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort)
            let credentials = RPCCredentials.sys(AuthSysParameters(uid: 0, gid: 0))
            let first = try await NFS3Client.connect(to: address, credentials: credentials, timeout: .seconds(60), group: group)
            let root = try await first.mount(server.exportPath)
            await first.close()

            // A sampler of the server's resident memory while the writers run.
            let peak = NIOLockedValueBox(0)
            let sampler = Task {
                while !Task.isCancelled {
                    let rss = server.residentKiB
                    peak.withLockedValue { $0 = max($0, rss) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            // Sixty connections, each writing 64 blocks of 32 KiB to a file of its own, 16 at a time.
            let failures = try await withThrowingTaskGroup(of: Int.self) { writers in
                for w in 0..<60 {
                    writers.addTask {
                        let c = try await NFS3Client.connect(to: address, credentials: credentials, timeout: .seconds(60), group: group)
                        defer { Task { await c.close() } }
                        guard let file = try await c.create(root, Array("busy-\(w)".utf8)).object else { return 1 }
                        return await withTaskGroup(of: Int.self) { calls in
                            for block in 0..<64 {
                                if block >= 16 { _ = await calls.next() }
                                calls.addTask {
                                    let data = ByteBuffer(repeating: UInt8(truncatingIfNeeded: w + block), count: 32 << 10)
                                    do {
                                        let reply = try await c.write(file, offset: UInt64(block) << 15, data: data, stable: .unstable)
                                        return reply.count == 32 << 10 ? 0 : 1
                                    } catch {
                                        return 1
                                    }
                                }
                            }
                            var failed = 0
                            for await f in calls { failed += f }
                            return failed
                        }
                    }
                }
                var failed = 0
                for try await f in writers { failed += f }
                return failed
            }
            sampler.cancel()
            _ = await sampler.result
            #expect(failures == 0, "\(failures) writes failed or were cut short")
            for w in [0, 31, 59] {
                var st = stat()
                #expect(stat(server.exportPath + "/busy-\(w)", &st) == 0 && st.st_size == 64 << 15, "busy-\(w)")
            }
            // Every idle connection is still open, and those asked answer a NULL call.
            var answered = 0
            for (i, fd) in idle.enumerated() where i % 50 == 0 {
                if Self.null(on: fd, xid: UInt32(i + 1)) { answered += 1 }
            }
            #expect(answered == 20, "\(answered) of 20 idle connections answered a NULL call")
            let peakKiB = peak.withLockedValue { $0 }
            #expect(rssIdle > 0 && rssIdle < 128 * 1024, "resident with 1,000 idle connections: \(rssIdle) KiB")
            #expect(peakKiB > 0 && peakKiB < 300 * 1024, "peak resident with 60 writing: \(peakKiB) KiB")
        }
    }

    /// A TCP connection from `source` (a loopback address) to the server, left idle.
    static func connect(from source: String, to port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = UInt16(port).bigEndian
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, size) } }
        guard fd >= 0, bound == 0, connected == 0 else {
            let e = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
        return fd
    }

    /// Sends an NFSv3 NULL call on `fd` and reads its reply (10 s at most): whether it came,
    /// accepted, with this xid.
    static func null(on fd: Int32, xid: UInt32) -> Bool {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Record mark (last fragment, 40 bytes), then xid, CALL, RPC 2, NFS 100003 v3, NULL,
        // AUTH_NONE credentials and verifier.
        let words: [UInt32] = [0x8000_0028, xid, 0, 2, 100_003, 3, 0, 0, 0, 0, 0]
        var bytes: [UInt8] = []
        for w in words { bytes += [UInt8(w >> 24), UInt8(truncatingIfNeeded: w >> 16), UInt8(truncatingIfNeeded: w >> 8), UInt8(truncatingIfNeeded: w)] }
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return false }
        // Record mark, xid, REPLY, MSG_ACCEPTED, verifier (2 words), SUCCESS: 28 bytes.
        var reply = [UInt8](repeating: 0, count: 28)
        var got = 0
        while got < reply.count {
            let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, $0.count - got, 0) }
            guard n > 0 else { return false }
            got += n
        }
        func word(_ i: Int) -> UInt32 { reply[i * 4 ..< i * 4 + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        return word(1) == xid && word(2) == 1 && word(3) == 0 && word(6) == 0
    }
}
