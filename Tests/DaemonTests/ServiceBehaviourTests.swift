import Foundation
import SwiftNFSTesting
import Glibc
import Testing

/// How `swiftnfsd serve` behaves as a service: systemd readiness, reload and stop
/// notifications, and a clear refusal when its port is taken.
@Suite(.serialized) struct ServiceBehaviourTests {
    static let binary = (try? Binaries.swiftnfsd().path) ?? "swiftnfsd (not built)"

    func temporaryDirectory() throws -> String {
        let d = NSTemporaryDirectory() + "swiftnfs-svc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d + "/export", withIntermediateDirectories: true)
        return d
    }

    func start(_ args: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = err
        try p.run()
        return (p, err)
    }

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

    @Test func aTakenPortIsAClearErrorNamingTheHolder() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build it first: swift build")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (fd, port) = try occupyPort()
        defer { close(fd) }
        let (p, err) = try start(["serve", "--export", dir + "/export", "--listen", "127.0.0.1", "--nfs-port", "\(port)",
                                   "--portmap-port", "0", "--state-dir", dir + "/state"])
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 1)
        #expect(text.contains("port \(port) on 127.0.0.1 is already in use by"))
        #expect(text.contains("(pid \(getpid()))"), "names the process that holds the port: \(text)")
        #expect(!text.contains("Fatal error"))
    }

    @Test func checkExportsPrintsTheTableOrTheError() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let corpus = Binaries.packageRoot.appendingPathComponent("Tests/DaemonTests/Corpus")
        let (good, goodOut) = try start(["check-exports", corpus.appendingPathComponent("good/ec2.exports").path])
        good.waitUntilExit()
        let table = String(decoding: goodOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(good.terminationStatus == 0)
        #expect(table.contains("/mnt/instance-store/data\t10.0.0.0/16(rw,sync,secure,no_root_squash,anonuid=65534,anongid=65534,fsid=1)"))
        #expect(table.contains("/srv/with space\t*(ro,sync,secure,root_squash"))
        let badFile = corpus.appendingPathComponent("bad/unknown-option.exports").path
        let (bad, badOut) = try start(["check-exports", badFile])
        bad.waitUntilExit()
        let error = String(decoding: badOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(bad.terminationStatus == 1)
        #expect(error.contains("\(badFile):1: unknown option 'no_subtre_check'"))
    }

    @Test func aMissingExportIsAClearError() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, err) = try start(["serve", "--export", dir + "/missing", "--listen", "127.0.0.1", "--nfs-port", "0",
                                   "--portmap-port", "0", "--state-dir", dir + "/state"])
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 1)
        #expect(text.contains("export \(dir)/missing: no such directory"))
    }

    @Test func systemdNotificationsForReadyReloadAndStop() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = dir + "/notify"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
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
        let exports = dir + "/exports"
        try "\(dir)/export 127.0.0.1(rw,insecure)\n".write(toFile: exports, atomically: true, encoding: .utf8)
        let (p, _) = try start(["serve", "--exports", exports, "--listen", "127.0.0.1", "--nfs-port", "0",
                                "--portmap-port", "0", "--state-dir", dir + "/state"],
                               environment: ["NOTIFY_SOCKET": socketPath])
        defer { if p.isRunning { p.terminate() } }
        #expect(receive().hasPrefix("READY=1"))
        kill(p.processIdentifier, SIGHUP)
        #expect(receive().hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(receive() == "READY=1")
        p.terminate()
        #expect(receive() == "STOPPING=1")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }
}
