import Locking
import Logging
import NIOCore
import ONCRPC
import XDR

/// The Network Lock Manager (program 100021, versions 1, 3 and 4) over the `LockManager`:
/// TEST, LOCK (blocking or not), CANCEL, UNLOCK, their asynchronous _MSG forms (answered by a
/// _RES call back to the client), GRANTED_RES, SHARE, UNSHARE, NM_LOCK and FREE_ALL.
/// Clients that take locks are recorded with the status monitor before their first lock is
/// granted; in the grace period after a start only reclaims are granted.
package struct NLMProgram: RPCProgram {
    /// The file a handle names, and whether the client may only read it; or the status to
    /// answer (a stale or foreign handle, a client the export does not serve).
    package typealias FileLookup = @Sendable (_ handle: [UInt8], _ context: RPCCallContext)
        -> Result<(file: LockFile, readOnly: Bool), NLM.Status>

    let locks: LockManager
    let monitor: ClientMonitor
    let grace: GracePeriod
    let files: FileLookup
    let peers: PeerCaller
    let logger: Logger

    package init(locks: LockManager, monitor: ClientMonitor, grace: GracePeriod, peers: PeerCaller, logger: Logger,
                 files: @escaping FileLookup) {
        self.locks = locks
        self.monitor = monitor
        self.grace = grace
        self.files = files
        self.peers = peers
        self.logger = logger
    }

    package var program: UInt32 { NLM.program }
    package var versions: ClosedRange<UInt32> { 1...4 }
    /// There is no version 2.
    package func supports(version: UInt32) -> Bool { version != 2 && versions.contains(version) }

    package func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        guard let p = NLM.Procedure(rawValue: procedure) else { return nil }
        switch p {
        case .null, .granted, .grantedMessage, .testResult, .lockResult, .cancelResult, .unlockResult, .grantedResult:
            return .inline
        case .share, .unshare, .nmLock, .freeAll:
            return version == 1 ? nil : .read
        default:
            // Runs on the pool: a client's first lock writes the status monitor's file.
            return .read
        }
    }

    package func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        guard let p = NLM.Procedure(rawValue: call.procedure) else { return .failure(.procUnavail) }
        var args = call.arguments
        let version = call.version
        switch p {
        case .null:
            try args.expectXDREnd()
        case .test, .testMessage:
            let a = try args.readNLMLockArguments(p, version: version)
            let (status, holder) = test(a, context)
            answer(p == .testMessage ? .testResult : nil, context, version, into: &results) {
                $0.writeNLMTestResult(cookie: a.cookie, status.cast(toVersion: version), holder: holder, version: version)
            }
        case .lock, .lockMessage, .nmLock:
            let a = try args.readNLMLockArguments(p, version: version)
            let status = lock(a, p, context, version: version)
            answer(p == .lockMessage ? .lockResult : nil, context, version, into: &results) {
                $0.writeNLMResult(cookie: a.cookie, status.cast(toVersion: version))
            }
        case .cancel, .cancelMessage:
            let a = try args.readNLMLockArguments(p, version: version)
            let status = withRequest(a, context, exclusive: a.exclusive) { r, _ in locks.cancel(r) ? .granted : .denied }
            answer(p == .cancelMessage ? .cancelResult : nil, context, version, into: &results) {
                $0.writeNLMResult(cookie: a.cookie, status.cast(toVersion: version))
            }
        case .unlock, .unlockMessage:
            let a = try args.readNLMLockArguments(p, version: version)
            let status = withRequest(a, context, exclusive: false) { r, _ -> NLM.Status in
                locks.unlock(r)
                return .granted
            }
            answer(p == .unlockMessage ? .unlockResult : nil, context, version, into: &results) {
                $0.writeNLMResult(cookie: a.cookie, status.cast(toVersion: version))
            }
        case .granted, .grantedMessage:
            // The server blocks for no one: a GRANTED sent here is for no lock it waits for.
            let a = try args.readNLMLockArguments(.test, version: version)
            answer(p == .grantedMessage ? .grantedResult : nil, context, version, into: &results) {
                $0.writeNLMResult(cookie: a.cookie, .denied)
            }
        case .grantedResult:
            // The answer to a GRANTED_MSG this server sent: the cookie is the grant's id.
            let (cookie, status) = try args.readNLMResult()
            if let id = Grant.id(cookie: cookie) { locks.confirm(id, accepted: status == .granted) }
        case .testResult, .lockResult, .cancelResult, .unlockResult:
            break  // answers to calls this server never makes
        case .share, .unshare:
            let a = try args.readNLMShareArguments()
            let status = share(a, context, take: p == .share)
            results.writeNLMShareResult(cookie: a.cookie, status.cast(toVersion: version))
        case .freeAll:
            let (name, _) = try args.readNLMNotify()
            try args.expectXDREnd()
            let address = context.remoteAddress?.ipAddress ?? ""
            let files = locks.releaseAll { $0.host == name && $0.address == address }
            try? monitor.forget { $0.name == name && $0.address == address }
            logger.info("FREE_ALL: locks of a client released", metadata: ["nlm.client": "\(name) (\(address))", "nlm.files": "\(files)"])
        }
        return .success
    }

    func owner(_ lock: NLMLock, _ context: RPCCallContext) -> LockOwner {
        LockOwner(host: lock.callerName, address: context.remoteAddress?.ipAddress ?? "", handle: lock.ownerHandle, process: lock.svid)
    }

    /// The request an NLM call makes, or the status that refuses it.
    func withRequest(_ a: NLMLockArguments, _ context: RPCCallContext, exclusive: Bool,
                     _ body: (LockRequest, _ readOnly: Bool) -> NLM.Status) -> NLM.Status {
        switch files(a.lock.fileHandle, context) {
        case .failure(let status): return status
        case .success(let found):
            return body(LockRequest(file: found.file, owner: owner(a.lock, context), exclusive: exclusive,
                                    range: LockRange(offset: a.lock.offset, length: a.lock.length)), found.readOnly)
        }
    }

    func test(_ a: NLMLockArguments, _ context: RPCCallContext) -> (NLM.Status, NLMHolder?) {
        var holder: NLMHolder?
        let status = withRequest(a, context, exclusive: a.exclusive) { r, _ in
            if grace.isActive { return .deniedGracePeriod }
            guard let l = locks.test(r) else { return .granted }
            holder = NLMHolder(exclusive: l.exclusive, svid: l.owner.process, ownerHandle: l.owner.handle,
                               offset: l.range.start, length: l.range.length)
            return .denied
        }
        return (status, holder)
    }

    func lock(_ a: NLMLockArguments, _ p: NLM.Procedure, _ context: RPCCallContext, version: UInt32) -> NLM.Status {
        guard let client = context.remoteAddress else { return .deniedNoLocks }
        return withRequest(a, context, exclusive: a.exclusive) { r, readOnly in
            if grace.isActive && !a.reclaim { return .deniedGracePeriod }
            if a.exclusive && readOnly { return .readOnlyFileSystem }
            if p != .nmLock {
                // Monitored before the grant: a restart right after it still reaches the client.
                let watched = MonitoredClient(name: a.lock.callerName, address: client.ipAddress ?? "",
                                              serverAddress: context.localAddress?.ipAddress ?? "")
                do {
                    try monitor.watch(watched) { grace.isActive ? nil : locks.holderAddresses }
                } catch {
                    logger.error("cannot record a client with the status monitor; lock refused",
                                 metadata: ["nlm.client": "\(watched.name) (\(watched.address))", "nlm.error": "\(error)"])
                    return .deniedNoLocks
                }
            }
            let notice = a.block && p != .nmLock
                ? GrantNotice(lock: a.lock, exclusive: a.exclusive, version: version, transport: context.transport,
                              client: client, server: context.localAddress, asynchronous: p == .lockMessage)
                : nil
            switch locks.lock(r, blockingWith: notice) {
            case .granted: return .granted
            case .denied: return .denied
            case .blocked: return .blocked
            case .full:
                logger.warning("too many locks, or blocked lock requests of one client; refused",
                               metadata: ["nlm.client": "\(a.lock.callerName) (\(client.ipAddress ?? "-"))"])
                return .deniedNoLocks
            }
        }
    }

    func share(_ a: NLMShareArguments, _ context: RPCCallContext, take: Bool) -> NLM.Status {
        switch files(a.fileHandle, context) {
        case .failure(let status): return status
        case .success(let found):
            let owner = LockOwner(host: a.callerName, address: context.remoteAddress?.ipAddress ?? "", handle: a.ownerHandle, process: 0)
            guard take else {
                locks.unshare(found.file, owner: owner)
                return .granted
            }
            if grace.isActive && !a.reclaim { return .deniedGracePeriod }
            if (a.access & 2) != 0 && found.readOnly { return .readOnlyFileSystem }
            return locks.share(found.file, owner: owner, denyMode: a.denyMode, access: a.access) ? .granted : .denied
        }
    }

    /// Writes the result into the reply, or, for a _MSG call (`resultProcedure` given), sends
    /// it to the client as a call of that _RES procedure and answers the _MSG with nothing.
    func answer(_ resultProcedure: NLM.Procedure?, _ context: RPCCallContext, _ version: UInt32,
                into results: inout ByteBuffer, _ write: (inout ByteBuffer) -> Void) {
        guard let resultProcedure else {
            write(&results)
            return
        }
        guard let peer = context.remoteAddress else { return }
        var arguments = ByteBuffer()
        write(&arguments)
        peers.send(PeerCall(peer: peer, source: context.localAddress, transport: context.transport, program: NLM.program,
                            version: version, procedure: resultProcedure.rawValue, arguments: arguments,
                            what: "NLM \(resultProcedure)"))
    }
}
