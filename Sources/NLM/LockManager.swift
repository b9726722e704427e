import Locking
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC

/// A file as locks name it: the export and the file's persistent id, which stays the same
/// across renames and for every hard link.
package struct LockFile: Hashable, Sendable {
    package var export: UInt64
    package var file: UInt64

    package init(export: UInt64, file: UInt64) {
        self.export = export
        self.file = file
    }
}

/// One lock asked for: whose, of which kind, over which bytes of which file.
package struct LockRequest: Hashable, Sendable {
    package var file: LockFile
    package var owner: LockOwner
    package var exclusive: Bool
    package var range: LockRange

    package init(file: LockFile, owner: LockOwner, exclusive: Bool, range: LockRange) {
        self.file = file
        self.owner = owner
        self.exclusive = exclusive
        self.range = range
    }
}

/// Where and how to tell a client that its blocked lock is now granted: the lock exactly as
/// the client sent it (its lock manager matches the GRANTED call against it), and the call's
/// addresses, version and transport.
package struct GrantNotice: Sendable {
    package var lock: NLMLock
    package var exclusive: Bool
    package var version: UInt32
    package var transport: RPCTransportProtocol
    package var client: SocketAddress
    package var server: SocketAddress?
    /// The lock came as LOCK_MSG: the grant goes as GRANTED_MSG.
    package var asynchronous: Bool

    package init(lock: NLMLock, exclusive: Bool, version: UInt32, transport: RPCTransportProtocol,
                 client: SocketAddress, server: SocketAddress?, asynchronous: Bool) {
        self.lock = lock
        self.exclusive = exclusive
        self.version = version
        self.transport = transport
        self.client = client
        self.server = server
        self.asynchronous = asynchronous
    }
}

/// A blocked lock that the server has taken for its waiter, to be announced to the client
/// (GRANTED). Until the client answers, `LockManager.confirm` keeps it; a client that no
/// longer wants it (its process gave up) answers "denied", and the lock is released again.
package struct Grant: Sendable {
    package var id: UInt64
    package var request: LockRequest
    package var notice: GrantNotice

    /// The cookie of the GRANTED call: the id, 8 bytes big-endian, which the client echoes.
    package var cookie: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: id >> UInt64(56 - 8 * $0)) } }

    /// The grant id an echoed cookie carries, if it is one of ours.
    package static func id(cookie: [UInt8]) -> UInt64? {
        cookie.count == 8 ? cookie.reduce(0) { $0 << 8 | UInt64($1) } : nil
    }
}

/// What became of a LOCK.
package enum LockOutcome: Hashable, Sendable {
    case granted
    /// Someone else holds a conflicting lock (a non-blocking request).
    case denied(FileLock)
    /// Queued: GRANTED follows when the lock is free.
    case blocked
    /// The queue of this client (or of the server) is full, or the server holds `maxLocks`.
    case full
}

/// The server's locks (NLM LOCK, TEST, CANCEL, UNLOCK, FREE_ALL, SHARE), with the queue of
/// blocked requests: when a lock goes, the waiters it was in the way of are granted in the
/// order they came, each announced once through `grants`. Bounded: at most
/// `maxWaitersPerClient` blocked requests per client address and `maxWaiters` in all, and
/// about `maxLocks` locks (a new lock is refused once they are held; one that changes a held
/// lock may split it into two more).
package final class LockManager: Sendable {
    package let table = LockTable<LockFile>()
    private let state = NIOLockedValueBox(State())
    /// Every grant to announce, in order; the lock service sends each as a GRANTED call.
    package let grants: AsyncStream<Grant>
    private let grantContinuation: AsyncStream<Grant>.Continuation
    let maxWaitersPerClient: Int
    let maxWaiters: Int
    let maxLocks: Int

    private struct Waiter {
        var request: LockRequest
        var notice: GrantNotice
    }

    private struct Share: Hashable {
        var owner: LockOwner
        var denyMode: UInt32
        var access: UInt32
    }

    private struct State {
        var waiters: [LockFile: [Waiter]] = [:]
        var waitersByClient: [String: Int] = [:]
        var waiterCount = 0
        var unconfirmed: [UInt64: Grant] = [:]
        var nextGrant: UInt64 = 1
        var shares: [LockFile: [Share]] = [:]
    }

    package init(maxWaitersPerClient: Int = 1024, maxWaiters: Int = 16384, maxLocks: Int = 1 << 20) {
        self.maxWaitersPerClient = maxWaitersPerClient
        self.maxWaiters = maxWaiters
        self.maxLocks = maxLocks
        (grants, grantContinuation) = AsyncStream.makeStream(of: Grant.self)
    }

    /// The lock in the way of `request`, if any (TEST).
    package func test(_ request: LockRequest) -> FileLock? {
        table.conflict(request.file, owner: request.owner, exclusive: request.exclusive, range: request.range)
    }

    /// Takes the lock; when it is in the way and `notice` is given (a blocking request), queues
    /// the request instead. A request already queued stays queued once.
    package func lock(_ request: LockRequest, blockingWith notice: GrantNotice? = nil) -> LockOutcome {
        let (outcome, granted) = state.withLockedValue { s -> (LockOutcome, [Grant]) in
            guard table.count < maxLocks else { return (.full, []) }
            if let holder = table.lock(request.file, owner: request.owner, exclusive: request.exclusive, range: request.range) {
                guard let notice else { return (.denied(holder), []) }
                if s.waiters[request.file]?.contains(where: { $0.request == request }) == true { return (.blocked, []) }
                let client = notice.client.ipAddress ?? ""
                guard s.waiterCount < maxWaiters, s.waitersByClient[client, default: 0] < maxWaitersPerClient else {
                    return (.full, [])
                }
                s.waiters[request.file, default: []].append(Waiter(request: request, notice: notice))
                s.waitersByClient[client, default: 0] += 1
                s.waiterCount += 1
                return (.blocked, [])
            }
            // A lock changed in place (a downgrade, a part given back) may free others' waiters.
            return (.granted, wake(request.file, &s))
        }
        announce(granted)
        return outcome
    }

    /// Withdraws a blocked request (CANCEL): the queued one, or, if the grant crossed the
    /// cancel on the wire, the lock it was granted. False when there was nothing to cancel.
    package func cancel(_ request: LockRequest) -> Bool {
        let (found, granted) = state.withLockedValue { s -> (Bool, [Grant]) in
            if let i = s.waiters[request.file]?.firstIndex(where: { $0.request == request }) {
                let w = s.waiters[request.file]!.remove(at: i)
                forgetWaiter(w, &s)
                if s.waiters[request.file]?.isEmpty == true { s.waiters[request.file] = nil }
                return (true, [])
            }
            guard let (id, _) = s.unconfirmed.first(where: { $0.value.request == request }) else { return (false, []) }
            s.unconfirmed[id] = nil
            table.unlock(request.file, owner: request.owner, range: request.range)
            return (true, wake(request.file, &s))
        }
        announce(granted)
        return found
    }

    /// Releases what the owner holds in the range (UNLOCK).
    package func unlock(_ request: LockRequest) {
        let granted = state.withLockedValue { s -> [Grant] in
            table.unlock(request.file, owner: request.owner, range: request.range)
            return wake(request.file, &s)
        }
        announce(granted)
    }

    /// The client's answer to a GRANTED call: a client that did not take the lock (its waiter
    /// is gone) gives it back. Unknown ids (answered twice, or after a cancel) change nothing.
    package func confirm(_ id: UInt64, accepted: Bool) {
        let granted = state.withLockedValue { s -> [Grant] in
            guard let grant = s.unconfirmed.removeValue(forKey: id), !accepted else { return [] }
            table.unlock(grant.request.file, owner: grant.request.owner, range: grant.request.range)
            return wake(grant.request.file, &s)
        }
        announce(granted)
    }

    /// Drops every lock, blocked request and share of the owners `matching` (FREE_ALL, a client
    /// that restarted); returns how many files had locks of theirs.
    @discardableResult
    package func releaseAll(matching: @escaping (LockOwner) -> Bool) -> Int {
        let (count, granted) = state.withLockedValue { s -> (Int, [Grant]) in
            let files = table.releaseAll(matching: matching)
            for (file, list) in s.waiters {
                let (gone, kept) = (list.filter { matching($0.request.owner) }, list.filter { !matching($0.request.owner) })
                for w in gone { forgetWaiter(w, &s) }
                s.waiters[file] = kept.isEmpty ? nil : kept
            }
            s.unconfirmed = s.unconfirmed.filter { !matching($0.value.request.owner) }
            for (file, list) in s.shares {
                let kept = list.filter { !matching($0.owner) }
                s.shares[file] = kept.isEmpty ? nil : kept
            }
            return (files.count, files.flatMap { wake($0, &s) })
        }
        announce(granted)
        return count
    }

    /// The addresses of the clients that hold locks or wait for one (the clients the status
    /// monitor still needs to watch).
    package var holderAddresses: Set<String> {
        state.withLockedValue { s in
            Set(table.allLocks.map(\.owner.address)).union(s.waiters.values.flatMap { $0.map(\.request.owner.address) })
        }
    }

    /// How many requests wait.
    package var waiting: Int { state.withLockedValue { $0.waiterCount } }

    /// Takes a share reservation (SHARE): refused when what it does is denied by another
    /// owner's reservation, or what it denies is done by one. An owner's new reservation on a
    /// file replaces its old one.
    package func share(_ file: LockFile, owner: LockOwner, denyMode: UInt32, access: UInt32) -> Bool {
        state.withLockedValue { s in
            var list = s.shares[file] ?? []
            list.removeAll { $0.owner == owner }
            if list.contains(where: { ($0.denyMode & access) != 0 || ($0.access & denyMode) != 0 }) { return false }
            list.append(Share(owner: owner, denyMode: denyMode, access: access))
            s.shares[file] = list
            return true
        }
    }

    /// Gives a share reservation back (UNSHARE).
    package func unshare(_ file: LockFile, owner: LockOwner) {
        state.withLockedValue { s in
            s.shares[file]?.removeAll { $0.owner == owner }
            if s.shares[file]?.isEmpty == true { s.shares[file] = nil }
        }
    }

    /// Grants the waiters on `file` that nothing is in the way of any more, first come first.
    private func wake(_ file: LockFile, _ s: inout State) -> [Grant] {
        guard let list = s.waiters[file] else { return [] }
        var kept: [Waiter] = []
        var granted: [Grant] = []
        for w in list {
            let r = w.request
            guard table.lock(file, owner: r.owner, exclusive: r.exclusive, range: r.range) == nil else {
                kept.append(w)
                continue
            }
            forgetWaiter(w, &s)
            let grant = Grant(id: s.nextGrant, request: r, notice: w.notice)
            s.nextGrant += 1
            s.unconfirmed[grant.id] = grant
            granted.append(grant)
        }
        s.waiters[file] = kept.isEmpty ? nil : kept
        return granted
    }

    private func forgetWaiter(_ w: Waiter, _ s: inout State) {
        let client = w.notice.client.ipAddress ?? ""
        s.waiterCount -= 1
        s.waitersByClient[client, default: 1] -= 1
        if s.waitersByClient[client] == 0 { s.waitersByClient[client] = nil }
    }

    private func announce(_ granted: [Grant]) {
        for g in granted { grantContinuation.yield(g) }
    }
}
