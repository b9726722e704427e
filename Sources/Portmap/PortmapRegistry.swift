import NIOConcurrencyHelpers
import NIOCore
import XDR

/// The table of registered programs. One entry per (program, version, netid).
///
/// The server's own programs (`setOwn`) cannot be replaced or removed through SET and UNSET:
/// on a host that mounts its own export, the kernel's lock manager and rpc.statd register
/// the same programs (NLM, NSM) as the server, and if they took the server's place every
/// remote client's lock would go to them. Their registrations are kept aside instead
/// (`localLookup`), for the server's own calls to the programs of this host.
///
/// Like `rpcbind -w`, the registrations of local programs outlive a restart of the server
/// (`saved`, `restore`): those programs register once, when they start.
package final class PortmapRegistry: Sendable {
    private let entries = NIOLockedValueBox(Entries())
    /// Called with the local programs' registrations whenever they change.
    private let onChange: @Sendable ([RPCBinding]) -> Void

    package init(onChange: @escaping @Sendable ([RPCBinding]) -> Void = { _ in }) {
        self.onChange = onChange
    }

    private struct Entries {
        var bindings: [RPCBinding] = []
        var own: Set<Key> = []
        /// Local programs' registrations of (program, version, netid)s the server owns.
        var aside: [RPCBinding] = []
    }

    private struct Key: Hashable {
        var program: UInt32
        var version: UInt32
        var netid: String
        init(_ b: RPCBinding) { (program, version, netid) = (b.program, b.version, b.netid) }
    }

    package var all: [RPCBinding] { entries.withLockedValue { $0.bindings } }

    /// Registers one of the server's own programs.
    package func setOwn(_ b: RPCBinding) {
        entries.withLockedValue { e in
            e.bindings.removeAll { Key($0) == Key(b) }
            e.bindings.append(b)
            e.own.insert(Key(b))
        }
    }

    /// Adds a binding; false if the (program, version, netid) is taken (RFC 1833 SET
    /// semantics). One the server owns is set aside instead (and the SET succeeds).
    @discardableResult
    package func set(_ b: RPCBinding) -> Bool {
        changing { e in
            if e.own.contains(Key(b)) {
                e.aside.removeAll { Key($0) == Key(b) }
                e.aside.append(b)
                return true
            }
            guard !e.bindings.contains(where: { Key($0) == Key(b) }) else { return false }
            e.bindings.append(b)
            return true
        }
    }

    /// Removes the bindings of (program, version), for one netid or all when `netid` is empty;
    /// never the server's own.
    @discardableResult
    package func unset(program: UInt32, version: UInt32, netid: String) -> Bool {
        changing { e in
            let matches = { (b: RPCBinding) in b.program == program && b.version == version && (netid.isEmpty || b.netid == netid) }
            let before = e.bindings.count + e.aside.count
            e.bindings.removeAll { [own = e.own] in matches($0) && !own.contains(Key($0)) }
            e.aside.removeAll(where: matches)
            return e.bindings.count + e.aside.count != before
        }
    }

    /// The binding for (program, version, netid); with `anyVersion`, falls back to another
    /// version of the program, as rpcbind and portmap do, so the client can learn the server's
    /// versions through PROG_MISMATCH.
    package func lookup(program: UInt32, version: UInt32, netid: String, anyVersion: Bool) -> RPCBinding? {
        entries.withLockedValue { e in
            e.bindings.first { $0.program == program && $0.version == version && $0.netid == netid }
                ?? (anyVersion ? e.bindings.first { $0.program == program && $0.netid == netid } : nil)
        }
    }

    /// Where a program of this host other than the server itself listens (the kernel's lock
    /// manager, rpc.statd): its registration set aside, else any that is not the server's.
    package func localLookup(program: UInt32, version: UInt32, netid: String) -> RPCBinding? {
        entries.withLockedValue { e in
            e.aside.first { $0.program == program && $0.version == version && $0.netid == netid }
                ?? e.bindings.first { $0.program == program && $0.version == version && $0.netid == netid && !e.own.contains(Key($0)) }
        }
    }

    /// The local programs' registrations (what `restore` takes back after a restart).
    package var saved: [RPCBinding] { entries.withLockedValue { Self.saved($0) } }

    /// Takes back the local programs' registrations of an earlier run, after `setOwn`.
    package func restore(_ bindings: [RPCBinding]) {
        entries.withLockedValue { e in
            for b in bindings {
                if e.own.contains(Key(b)) {
                    e.aside.removeAll { Key($0) == Key(b) }
                    e.aside.append(b)
                } else if !e.bindings.contains(where: { Key($0) == Key(b) }) {
                    e.bindings.append(b)
                }
            }
        }
    }

    /// The saved registrations as a file holds them (an XDR list of rpcb).
    package static func encode(_ bindings: [RPCBinding]) -> [UInt8] {
        var b = ByteBuffer()
        b.writeXDRArray(bindings) { $0.writeRPCBinding($1) }
        return Array(b.readableBytesView)
    }

    package static func decode(_ bytes: [UInt8]) throws -> [RPCBinding] {
        var b = ByteBuffer(bytes: bytes)
        let bindings = try b.readXDRArray(limit: 4096) { try $0.readRPCBinding() }
        try b.expectXDREnd()
        return bindings
    }

    private static func saved(_ e: Entries) -> [RPCBinding] {
        e.bindings.filter { !e.own.contains(Key($0)) } + e.aside
    }

    private func changing(_ change: (inout Entries) -> Bool) -> Bool {
        let (changed, now) = entries.withLockedValue { e -> (Bool, [RPCBinding]) in
            let changed = change(&e)
            return (changed, changed ? Self.saved(e) : [])
        }
        if changed { onChange(now) }
        return changed
    }
}
