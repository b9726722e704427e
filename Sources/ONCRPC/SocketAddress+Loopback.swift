import NIOCore

extension SocketAddress {
    /// A caller on this host: 127.0.0.0/8, ::1, an IPv4-mapped 127.x address, or a Unix
    /// domain socket. Registrations with the portmapper and monitors of the status monitor are
    /// taken only from such callers.
    public var isLoopback: Bool {
        if case .unixDomainSocket = self { return true }
        // `ipAddress`, not the `host` of the address: that is empty unless the address came
        // from resolving a name.
        guard let ip = ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}
