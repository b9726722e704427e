import Foundation
import Glibc
import SwiftNFSTesting
import Testing

/// How `swiftnfsd serve` behaves as a service: systemd readiness, reload and stop
/// notifications, and a clear refusal when its port is taken.
@Suite(.serialized) struct ServiceBehaviourTests {
    /// A TCP listener on a free loopback port, held open by this test.
    func occupyPort() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 1)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    @Test func aTakenPortIsAClearErrorNamingTheHolder() async throws {
        let (fd, port) = try occupyPort()
        defer { close(fd) }
        let server = try ServerProcess(portmap: .none, nfsPort: port)
        defer { server.removeFiles() }
        let status = try await server.runUntilExit()
        let text = server.log
        #expect(status == 1)
        #expect(text.contains("port \(port) on 127.0.0.1 is already in use by"))
        #expect(text.contains("(pid \(getpid()))"), "names the process that holds the port: \(text)")
        #expect(!text.contains("Fatal error"))
    }

    @Test func checkExportsPrintsTheTableOrTheError() async throws {
        let binary = try Binaries.swiftnfsd().path
        let corpus = Binaries.packageRoot.appendingPathComponent("Tests/DaemonTests/Corpus")
        let good = try await Tools.run(binary, ["check-exports", corpus.appendingPathComponent("good/ec2.exports").path])
        #expect(good.status == 0)
        #expect(good.stdout.contains("/mnt/instance-store/data\t10.0.0.0/16(rw,sync,secure,no_root_squash,anonuid=65534,anongid=65534,fsid=1)"))
        #expect(good.stdout.contains("/srv/with space\t*(ro,sync,secure,root_squash"))
        let badFile = corpus.appendingPathComponent("bad/unknown-option.exports").path
        let bad = try await Tools.run(binary, ["check-exports", badFile])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("\(badFile):1: unknown option 'no_subtre_check'"))
    }

    @Test func aMissingExportIsAClearError() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        try FileManager.default.removeItem(atPath: server.exportPath)
        let status = try await server.runUntilExit()
        #expect(status == 1)
        #expect(server.log.contains("export \(server.exportPath): no such directory"))
    }

    @Test func systemdNotificationsForReadyReloadAndStop() async throws {
        let socketPath = NSTemporaryDirectory() + "swiftnfs-notify-\(UUID().uuidString)"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer {
            close(fd)
            unlink(socketPath)
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(socketPath.utf8)) }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func receive() -> String {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buf, buf.count, 0)
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : "<nothing>"
        }
        try await ServerProcess.with(portmap: .none, configure: { server in
            let exports = server.root.appendingPathComponent("exports").path
            try "\(server.exportPath) 127.0.0.1(rw,insecure)\n".write(toFile: exports, atomically: true, encoding: .utf8)
            server.exportsFile = exports
            server.environment = ["NOTIFY_SOCKET": socketPath]
        }) { server in
            #expect(receive().hasPrefix("READY=1"))
            kill(try #require(server.pid), SIGHUP)
            #expect(receive().hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
            #expect(receive() == "READY=1")
            try await server.stop()
            #expect(receive() == "STOPPING=1")
            #expect(server.exitStatus == 0)
        }
    }
}
