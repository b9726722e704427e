import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Loopback port helpers. The server wants the same number on TCP and UDP.
package enum Ports {
    /// Ports handed out during this test run, so parallel tests never pick the same one.
    private static let handedOut = Mutex<Set<Int>>([])

    /// Where `freeTCPAndUDP` picks from: below the kernel's ephemeral range (32768-60999 by
    /// default), which every client socket of the tests draws from. A port the kernel handed
    /// out (port 0) could be given to a client's connection between the check and the
    /// server's bind; one from here is not.
    static let range = 10_000..<32_000

    /// A port that is currently free on 127.0.0.1 for both TCP and UDP.
    package static func freeTCPAndUDP() throws -> Int {
        for _ in 0..<1000 {
            let port = Int.random(in: range)
            guard let tcp = try? bound(type: SOCK_STREAM, port: port) else { continue }
            defer { close(tcp.fd) }
            guard let udp = try? bound(type: SOCK_DGRAM, port: port) else { continue }
            close(udp.fd)
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            if fresh { return port }
        }
        throw ToolFailure(message: "could not find a free loopback port", result: nil)
    }

    /// Whether nothing holds `port` on 127.0.0.1 for TCP or UDP (a socket
    /// bound to the wildcard address counts as holding it).
    package static func isFree(_ port: Int) -> Bool {
        for type in [SOCK_STREAM, SOCK_DGRAM] {
            guard let socket = try? bound(type: type, port: port) else { return false }
            close(socket.fd)
        }
        return true
    }

    /// The RPC universal address of 127.0.0.1:`port` ("127.0.0.1.p1.p2"), as
    /// `rpcinfo -a` takes it. (Debian's `rpcinfo -n PORT -t|-u` ignores the
    /// port and asks the portmapper on 111, so the tests use `-a` instead.)
    package static func universalAddress(_ port: Int) -> String {
        "127.0.0.1.\(port >> 8).\(port & 0xff)"
    }

    private struct BindError: Error {}

    /// A socket bound to 127.0.0.1:`port` (0 for any), with the port it got.
    private static func bound(type: __socket_type, port: Int) throws -> (fd: Int32, port: Int?) {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        guard fd >= 0 else { throw BindError() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard result == 0 else {
            close(fd)
            throw BindError()
        }
        var actual = sockaddr_in()
        var actualLength = length
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        return (fd, named == 0 ? Int(UInt16(bigEndian: actual.sin_port)) : nil)
    }
}
