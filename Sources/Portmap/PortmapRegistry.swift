import NIOConcurrencyHelpers

/// The table of registered programs. One entry per (program, version, netid).
package final class PortmapRegistry: Sendable {
    private let entries = NIOLockedValueBox<[RPCBinding]>([])

    package init() {}

    package var all: [RPCBinding] { entries.withLockedValue { $0 } }

    /// Adds a binding; false if the (program, version, netid) is taken (RFC 1833 SET semantics).
    @discardableResult
    package func set(_ b: RPCBinding) -> Bool {
        entries.withLockedValue { e in
            guard !e.contains(where: { $0.program == b.program && $0.version == b.version && $0.netid == b.netid }) else {
                return false
            }
            e.append(b)
            return true
        }
    }

    /// Removes the bindings of (program, version), for one netid or all when `netid` is empty.
    @discardableResult
    package func unset(program: UInt32, version: UInt32, netid: String) -> Bool {
        entries.withLockedValue { e in
            let before = e.count
            e.removeAll { $0.program == program && $0.version == version && (netid.isEmpty || $0.netid == netid) }
            return e.count != before
        }
    }

    /// The binding for (program, version, netid); with `anyVersion`, falls back to another
    /// version of the program, as rpcbind and portmap do, so the client can learn the server's
    /// versions through PROG_MISMATCH.
    package func lookup(program: UInt32, version: UInt32, netid: String, anyVersion: Bool) -> RPCBinding? {
        entries.withLockedValue { e in
            e.first { $0.program == program && $0.version == version && $0.netid == netid }
                ?? (anyVersion ? e.first { $0.program == program && $0.netid == netid } : nil)
        }
    }
}
