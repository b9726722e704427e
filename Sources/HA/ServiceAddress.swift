import FoundationEssentials

/// The address clients use for the cluster (`--ha-address IP/PREFIX`): held by the active
/// alone, on `interface` (`--ha-interface`).
package struct ServiceAddress: Hashable, Sendable, CustomStringConvertible {
    package var ip: String
    package var prefixLength: Int
    package var interface: String

    /// Parses "10.0.0.100/24" (or an IPv6 address with its prefix); nil when it is not one.
    package init?(_ text: String, interface: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), !interface.isEmpty else { return nil }
        let ip = String(parts[0])
        let isV4 = Self.isIPv4(ip)
        guard isV4 || Self.isIPv6(ip), (0...(isV4 ? 32 : 128)).contains(prefix) else { return nil }
        self.ip = ip
        self.prefixLength = prefix
        self.interface = interface
    }

    package var isIPv4: Bool { Self.isIPv4(ip) }
    /// "IP/PREFIX", as `ip addr` takes it.
    package var cidr: String { "\(ip)/\(prefixLength)" }
    package var description: String { "\(cidr) on \(interface)" }

    static func isIPv4(_ s: String) -> Bool {
        let octets = s.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { o in
            !o.isEmpty && o.count <= 3 && o.allSatisfy(\.isASCII) && Int(o).map { (0...255).contains($0) } == true
        }
    }

    static func isIPv6(_ s: String) -> Bool {
        s.contains(":") && s.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }
}
