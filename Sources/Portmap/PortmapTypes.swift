import NIOCore
import XDR

// RFC 1833 §3 (rpcbind versions 3 and 4) and §3.1 (portmap version 2):
//   struct rpcb { unsigned long r_prog; unsigned long r_vers; string r_netid<>;
//                 string r_addr<>; string r_owner<>; };
//   struct rpcblist { rpcb rpcb_map; struct rpcblist *rpcb_next; };
//   struct mapping { unsigned int prog; unsigned int vers; unsigned int prot; unsigned int port; };
//   struct *pmaplist { mapping map; pmaplist next; };

package enum Portmap {
    /// RFC 1833: program 100000; version 2 is portmap, 3 and 4 are rpcbind.
    package static let program: UInt32 = 100_000
    package static let versions: ClosedRange<UInt32> = 2...4
    package static let defaultPort = 111
    /// IPPROTO_TCP and IPPROTO_UDP as used by portmap v2 mappings.
    package static let protocolTCP: UInt32 = 6
    package static let protocolUDP: UInt32 = 17
    /// Bounds for the strings of an rpcb (netids are short; universal addresses of IPv6
    /// with a port fit in 64 bytes; owners are user names).
    package static let maxNetID = 32
    package static let maxUniversalAddress = 128
    package static let maxOwner = 256
}

/// RFC 1833 §3 procedures of version 3/4 (2 has the first five under other names).
package enum PortmapProcedure {
    package static let null: UInt32 = 0
    package static let set: UInt32 = 1
    package static let unset: UInt32 = 2
    /// v2 GETPORT, v3/v4 GETADDR.
    package static let getAddress: UInt32 = 3
    package static let dump: UInt32 = 4
    /// v2 CALLIT, v3 CALLIT, v4 BCAST: refused (an amplifier).
    package static let callit: UInt32 = 5
    package static let getTime: UInt32 = 6
    package static let getVersionAddress: UInt32 = 9
}

/// A v2 mapping.
package struct PortmapMapping: Hashable, Sendable {
    package var program: UInt32
    package var version: UInt32
    package var protocolNumber: UInt32
    package var port: UInt32
    package init(program: UInt32, version: UInt32, protocolNumber: UInt32, port: UInt32) {
        self.program = program; self.version = version; self.protocolNumber = protocolNumber; self.port = port
    }
}

/// A v3/v4 rpcb.
package struct RPCBinding: Hashable, Sendable {
    package var program: UInt32
    package var version: UInt32
    package var netid: String
    package var address: String
    package var owner: String
    package init(program: UInt32, version: UInt32, netid: String, address: String, owner: String) {
        self.program = program; self.version = version; self.netid = netid; self.address = address; self.owner = owner
    }
}

extension ByteBuffer {
    package mutating func readPortmapMapping() throws -> PortmapMapping {
        PortmapMapping(program: try readXDRUInt32(), version: try readXDRUInt32(),
                       protocolNumber: try readXDRUInt32(), port: try readXDRUInt32())
    }

    @discardableResult
    package mutating func writePortmapMapping(_ m: PortmapMapping) -> Int {
        writeXDRUInt32(m.program) + writeXDRUInt32(m.version) + writeXDRUInt32(m.protocolNumber) + writeXDRUInt32(m.port)
    }

    package mutating func readRPCBinding() throws -> RPCBinding {
        RPCBinding(program: try readXDRUInt32(), version: try readXDRUInt32(),
                   netid: try readXDRString(limit: Portmap.maxNetID),
                   address: try readXDRString(limit: Portmap.maxUniversalAddress),
                   owner: try readXDRString(limit: Portmap.maxOwner))
    }

    @discardableResult
    package mutating func writeRPCBinding(_ b: RPCBinding) -> Int {
        writeXDRUInt32(b.program) + writeXDRUInt32(b.version) + writeXDRString(b.netid)
            + writeXDRString(b.address) + writeXDRString(b.owner)
    }

    /// An XDR optional-data linked list (`*next` pointers): a bool before every element and a
    /// false after the last.
    @discardableResult
    package mutating func writeXDRList<T>(_ items: [T], _ element: (inout ByteBuffer, T) -> Int) -> Int {
        var n = 0
        for item in items { n += writeXDRBool(true) + element(&self, item) }
        return n + writeXDRBool(false)
    }

    package mutating func readXDRList<T>(limit: Int, _ element: (inout ByteBuffer) throws -> T) throws -> [T] {
        var out: [T] = []
        while try readXDRBool() {
            guard out.count < limit else { throw XDRError(.lengthExceedsLimit, "list longer than \(limit)") }
            out.append(try element(&self))
        }
        return out
    }
}

/// RFC 1833 §2.2 universal addresses: "h1.h2.h3.h4.p1.p2" for IPv4, "x:x::x.p1.p2" for IPv6.
package enum UniversalAddress {
    package static func make(host: String, port: Int) -> String {
        "\(host).\(port >> 8).\(port & 0xff)"
    }

    /// Splits a universal address into host and port.
    package static func parse(_ address: String) -> (host: String, port: Int)? {
        let parts = address.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3, let hi = Int(parts[parts.count - 2]), let lo = Int(parts[parts.count - 1]),
              (0...255).contains(hi), (0...255).contains(lo) else { return nil }
        return (parts.dropLast(2).joined(separator: "."), hi << 8 | lo)
    }
}
