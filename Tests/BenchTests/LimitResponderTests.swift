import Bench
import Foundation
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Benchmarks/limit/limit-responder.c, the do-nothing reference `Benchmarks/limit.sh` measures
/// SwiftNFS against: compiled with gcc, it must satisfy the bench's reply checks (which verify
/// every READ's data), and survive garbage.
@Suite("the limit responder answers the bench",
       .enabled(if: (try? Tools.path(of: "gcc")) != nil, "gcc is not installed: it compiles Benchmarks/limit/limit-responder.c"))
struct LimitResponderTests {
    /// The responder, compiled and listening on a free loopback port.
    final class Responder {
        let port: Int
        let process = Process()

        init() async throws {
            let source = Binaries.packageRoot.appendingPathComponent("Benchmarks/limit/limit-responder.c").path
            let binary = FileManager.default.temporaryDirectory.appendingPathComponent("limit-responder-\(UUID().uuidString)").path
            try await Tools.runChecked("gcc", ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", binary, source])
            port = try Ports.freeTCPAndUDP()
            process.executableURL = URL(fileURLWithPath: binary)
            // Files of 4 MiB, as the bench's --file-size 4 below.
            process.arguments = ["-p", "\(port)", "-t", "2", "-s", "4", "-S", "4"]
            process.standardError = FileHandle.nullDevice
            try Tools.launch(process)
            try? FileManager.default.removeItem(atPath: binary)  // the running process keeps it
            for _ in 0..<100 {
                if let socket = try? RawConnection(port: port) { socket.close(); return }
                try await Task.sleep(for: .milliseconds(20))
            }
            stop()
            throw ToolFailure(message: "limit-responder did not listen on \(port)", result: nil)
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    @Test("the bench's NULL, GETATTR, READ 4 KiB and WRITE 4 KiB (with MNT, CREATE, COMMIT) get replies that pass its checks",
          .timeLimit(.minutes(1)))
    func benchAgainstResponder() async throws {
        let responder = try await Responder()
        defer { responder.stop() }
        _ = try await runBench(
            port: responder.port, export: "/limit", workloads: ["null", "getattr", "read4k", "write4k-unstable"],
            options: ["--file-size", "4", "--duration", "0.3", "--inflight", "4", "-c", "2"], timeout: .seconds(50))
    }

    @Test("garbage gets an RPC error or a closed connection, and the responder still answers", .timeLimit(.minutes(1)))
    func garbage() async throws {
        let responder = try await Responder()
        defer { responder.stop() }

        // A record mark announcing more than the responder takes (2 GiB - 1): the connection is closed.
        let huge = try RawConnection(port: responder.port)
        try huge.send([0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try huge.receiveRecord() == nil)
        huge.close()

        // On one connection: a call cut short after its xid and direction, a call of an unknown
        // program, an NFSv3 procedure that does not exist, a GETATTR with a handle of 3 bytes
        // but no bytes of it, and a call of version 2 of NFS.
        let c = try RawConnection(port: responder.port)
        defer { c.close() }
        let truncated: [UInt32] = [1, 0]
        try c.sendRecord(truncated)
        #expect(try c.acceptStat(xid: 1) == 4)  // GARBAGE_ARGS
        try c.sendRecord(RawConnection.call(xid: 2, program: 200_000, version: 1, procedure: 1))
        #expect(try c.acceptStat(xid: 2) == 1)  // PROG_UNAVAIL
        try c.sendRecord(RawConnection.call(xid: 3, program: 100_003, version: 3, procedure: 99))
        #expect(try c.acceptStat(xid: 3) == 3)  // PROC_UNAVAIL
        try c.sendRecord(RawConnection.call(xid: 4, program: 100_003, version: 3, procedure: 1) + [3])
        #expect(try c.acceptStat(xid: 4) == 4)  // GARBAGE_ARGS
        try c.sendRecord(RawConnection.call(xid: 5, program: 100_003, version: 2, procedure: 0))
        #expect(try c.acceptStat(xid: 5) == 2)  // PROG_MISMATCH
        // NULL of NFSv3 in two fragments: reassembled and answered.
        let null = RawConnection.call(xid: 6, program: 100_003, version: 3, procedure: 0)
        try c.send(RawConnection.fragment(Array(null[..<3]), last: false) + RawConnection.fragment(Array(null[3...]), last: true))
        #expect(try c.acceptStat(xid: 6) == 0)  // SUCCESS

        // A reply (not a call): the connection is closed.
        let reply = try RawConnection(port: responder.port)
        try reply.sendRecord([7, 1])
        #expect(try reply.receiveRecord() == nil)
        reply.close()

        // Another connection still gets its NULL answered.
        let after = try RawConnection(port: responder.port)
        defer { after.close() }
        try after.sendRecord(RawConnection.call(xid: 8, program: 100_005, version: 3, procedure: 0))
        #expect(try after.acceptStat(xid: 8) == 0)
    }
}

/// A blocking TCP connection to 127.0.0.1 that speaks RPC record marking (RFC 5531 §11) word by word.
struct RawConnection {
    let fd: Int32

    struct Failure: Error { let what: String }

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(what: "socket") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw Failure(what: "connect: errno \(errno)")
        }
    }

    func close() { Glibc.close(fd) }

    /// An RPC call's header with AUTH_NONE credentials and verifier (RFC 5531 §9), as words.
    static func call(xid: UInt32, program: UInt32, version: UInt32, procedure: UInt32) -> [UInt32] {
        [xid, 0, 2, program, version, procedure, 0, 0, 0, 0]
    }

    static func encode(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { w in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: w >> $0) } }
    }

    /// The words as one fragment: a record mark (the last fragment's has the top bit set), then them.
    static func fragment(_ words: [UInt32], last: Bool) -> [UInt8] {
        encode([UInt32(words.count * 4) | (last ? 0x8000_0000 : 0)] + words)
    }

    func send(_ data: [UInt8]) throws {
        let sent = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == data.count else { throw Failure(what: "send: \(sent) of \(data.count) bytes") }
    }

    func sendRecord(_ words: [UInt32]) throws { try send(Self.fragment(words, last: true)) }

    private func receive(_ count: Int) throws -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == ECONNRESET { return nil }
                throw Failure(what: "recv: errno \(errno)")
            }
            got += n
        }
        return out
    }

    /// The next record as words (the responder always replies in one fragment), nil at end of stream.
    func receiveRecord() throws -> [UInt32]? {
        guard let mark = try receive(4) else { return nil }
        let length = Int(mark.reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF)
        guard let body = try receive(length) else { return nil }
        return stride(from: 0, to: body.count - 3, by: 4).map { i in body[i..<i + 4].reduce(0) { $0 << 8 | UInt32($1) } }
    }

    /// The accept_stat of the next reply, which must be an accepted reply to `xid`.
    func acceptStat(xid: UInt32) throws -> UInt32? {
        guard let reply = try receiveRecord(), reply.count >= 6 else { return nil }
        // xid, REPLY, MSG_ACCEPTED, verifier flavour and length, accept_stat
        guard reply[0] == xid, reply[1] == 1, reply[2] == 0 else { throw Failure(what: "reply \(reply)") }
        return reply[5]
    }
}
