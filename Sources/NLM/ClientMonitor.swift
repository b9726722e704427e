import NIOConcurrencyHelpers
import NIOCore
import XDR

/// A client that took locks: whom to tell (SM_NOTIFY) that the server restarted, so it
/// reclaims them.
package struct MonitoredClient: Hashable, Sendable {
    /// Its `caller_name`.
    package var name: String
    /// Its address, where its status monitor is asked for.
    package var address: String
    /// The server's address as the client reached it: the name the client's monitor knows the
    /// server by, and the address the notice comes from.
    package var serverAddress: String

    package init(name: String, address: String, serverAddress: String) {
        self.name = name
        self.address = address
        self.serverAddress = serverAddress
    }
}

/// The status monitor's memory (what rpc.statd keeps in /var/lib/nfs/sm): this run's NSM
/// state number (odd while up, larger after every start), the clients that hold locks, and the
/// local lock managers that asked (SM_MON) to hear of hosts that restart. Saved through `save`
/// before a first lock of a client is granted, so a crash right after still notifies it.
package final class ClientMonitor: Sendable {
    /// This run's state number (moved on again at each takeover of a high-availability node).
    package var state: Int32 { saved.withLockedValue { $0.state } }
    /// The clients of the previous run, to notify now.
    package let previousClients: [MonitoredClient]
    /// The local monitors of the previous run: told that this host (and so its locks) restarted.
    package let previousLocalMonitors: [NSMMonitor]
    private let saved: NIOLockedValueBox<Saved>
    private let save: @Sendable ([UInt8]) throws -> Void

    private struct Saved {
        var state: Int32
        var clients: [MonitoredClient]
        var local: [NSMMonitor]
    }

    /// Takes over what the previous run saved (`bytes`; nil at the first start), moves the state
    /// on and saves it.
    package init(saved bytes: [UInt8]?, save: @escaping @Sendable ([UInt8]) throws -> Void) throws {
        var previous = Saved(state: 0, clients: [], local: [])
        if let bytes { previous = try Self.decode(bytes) }
        // Odd while up: one more than the last run's, and then odd.
        var next = previous.state &+ 1
        if next % 2 == 0 { next &+= 1 }
        if next <= 0 { next = 1 }
        previousClients = previous.clients
        previousLocalMonitors = previous.local
        saved = NIOLockedValueBox(Saved(state: next, clients: previous.clients, local: previous.local))
        self.save = save
        try save(Self.encode(saved.withLockedValue { $0 }))
    }

    /// The clients on record.
    package var clients: [MonitoredClient] { saved.withLockedValue { $0.clients } }

    /// What is on record, as `save` is given it.
    package var encoded: [UInt8] { Self.encode(saved.withLockedValue { $0 }) }

    /// A high-availability takeover: the clients that another node (the active before) had on
    /// record (`bytes`, as it saved them) are this node's too, to be notified and to reclaim
    /// their locks here; and this node's state passes the other's, so that the next notice
    /// is newer than any the clients had. Local monitors stay this host's own.
    package func adopt(_ bytes: [UInt8]) throws {
        let other = try Self.decode(bytes)
        try update { s in
            let missing = other.clients.filter { !s.clients.contains($0) }
            let state = max(s.state, other.state)
            guard !missing.isEmpty || state != s.state else { return false }
            s.clients += missing
            s.state = state
            return true
        }
    }

    /// The local monitors on record.
    package var localMonitors: [NSMMonitor] { saved.withLockedValue { $0.local } }

    /// A high-availability node became the active: as far as clients can tell, the server
    /// restarted. The state moves on to the next odd number, saved, before anyone is told.
    package func advance() throws {
        try update { s in
            var next = s.state &+ 2
            if next <= 0 { next = 1 }
            s.state = next
            return true
        }
    }

    /// Records a client before its first lock is granted. Clients that hold nothing any more
    /// (not among the addresses `keeping` gives, asked only when the client is new) are dropped
    /// in the same write; nil keeps everyone.
    package func watch(_ client: MonitoredClient, keeping: () -> Set<String>? = { nil }) throws {
        try update { s in
            guard !s.clients.contains(client) else { return false }
            if let keeping = keeping() { s.clients.removeAll { !keeping.contains($0.address) } }
            s.clients.append(client)
            return true
        }
    }

    /// Drops the clients `matching` (a client that restarted, or holds nothing any more).
    package func forget(matching: (MonitoredClient) -> Bool) throws {
        try update { s in
            let before = s.clients.count
            s.clients.removeAll(where: matching)
            return s.clients.count != before
        }
    }

    /// SM_MON of a local lock manager.
    package func addLocal(_ m: NSMMonitor) throws {
        try update { s in
            guard !s.local.contains(m) else { return false }
            s.local.removeAll { $0.host == m.host && $0.callback == m.callback }
            s.local.append(m)
            return true
        }
    }

    /// SM_UNMON (a host and callback) and SM_UNMON_ALL (every host of a callback).
    package func removeLocal(host: String?, callback: NSMCallback) throws {
        try update { s in
            let before = s.local.count
            s.local.removeAll { (host == nil || $0.host == host) && $0.callback == callback }
            return s.local.count != before
        }
    }

    /// The local monitors watching `host` (by name or address).
    package func localMonitors(watching hosts: Set<String>) -> [NSMMonitor] {
        saved.withLockedValue { $0.local.filter { hosts.contains($0.host) } }
    }

    private func update(_ change: (inout Saved) -> Bool) throws {
        try saved.withLockedValue { s in
            var next = s
            guard change(&next) else { return }
            try save(Self.encode(next))
            s = next
        }
    }

    /// "SNSM", version 1, the state, the clients, the local monitors: XDR.
    static let magic: UInt32 = 0x534E_534D

    private static func encode(_ s: Saved) -> [UInt8] {
        var b = ByteBuffer()
        b.writeXDRUInt32(magic)
        b.writeXDRUInt32(1)
        b.writeXDRInt32(s.state)
        b.writeXDRArray(s.clients) { b, c in
            b.writeXDRString(c.name) + b.writeXDRString(c.address) + b.writeXDRString(c.serverAddress)
        }
        b.writeXDRArray(s.local) { b, m in
            let start = b.writerIndex
            b.writeNSMMonitor(m)
            return b.writerIndex - start
        }
        return Array(b.readableBytesView)
    }

    private static func decode(_ bytes: [UInt8]) throws -> Saved {
        var b = ByteBuffer(bytes: bytes)
        guard try b.readXDRUInt32() == magic, try b.readXDRUInt32() == 1 else {
            throw XDRError(.invalidEnum, "not a SwiftNFS status monitor file")
        }
        let state = try b.readXDRInt32()
        let clients = try b.readXDRArray(limit: 1 << 20) { b in
            MonitoredClient(name: try b.readXDRString(limit: NSM.maxString), address: try b.readXDRString(limit: 256),
                            serverAddress: try b.readXDRString(limit: 256))
        }
        let local = try b.readXDRArray(limit: 1 << 16) { try $0.readNSMMonitor() }
        try b.expectXDREnd()
        return Saved(state: state, clients: clients, local: local)
    }
}

/// The time after a start during which only reclaims of locks held before it are granted.
package final class GracePeriod: Sendable {
    private let active: NIOLockedValueBox<Bool>

    package init(active: Bool) {
        self.active = NIOLockedValueBox(active)
    }

    package var isActive: Bool { active.withLockedValue { $0 } }

    package func end() { active.withLockedValue { $0 = false } }

    /// A takeover: only reclaims are granted until `end`.
    package func begin() { active.withLockedValue { $0 = true } }
}
