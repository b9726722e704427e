import Glibc

/// The systemd notification protocol (sd_notify(3)), spoken directly: a datagram to the Unix
/// socket named by $NOTIFY_SOCKET (a leading '@' means the abstract namespace). Without the
/// variable (not started by systemd) every call does nothing.
struct SystemdNotifier: Sendable {
    let path: String?

    init(environment: [String: String] = Self.environment()) {
        path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func environment() -> [String: String] {
        var out: [String: String] = [:]
        if let v = getenv("NOTIFY_SOCKET") { out["NOTIFY_SOCKET"] = String(decoding: UnsafeRawBufferPointer(start: v, count: strlen(v)), as: UTF8.self) }
        return out
    }

    /// Sends `state` (e.g. "READY=1"). Returns false if it could not be delivered.
    @discardableResult
    func notify(_ state: String) -> Bool {
        guard let path else { return true }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
        return sent == message.count
    }
}
