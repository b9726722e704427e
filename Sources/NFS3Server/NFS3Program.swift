import NFS3
import NIOCore
import ONCRPC
import XDR

/// Program 100003 version 3: decodes each call, runs the procedure, encodes the reply.
/// Arguments are parsed strictly (truncation, bad enums, non-zero fill or trailing bytes are
/// GARBAGE_ARGS).
package struct NFS3Program: RPCProgram {
    package let server: NFS3Server
    /// Per-procedure metrics; nil when nothing collects them.
    package let metrics: NFS3Metrics?

    package init(server: NFS3Server, metrics: NFS3Metrics? = nil) {
        self.server = server
        self.metrics = metrics
    }

    package var program: UInt32 { NFS3.program }
    package var versions: ClosedRange<UInt32> { NFS3.version...NFS3.version }

    package func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        guard let p = NFS3Procedure(rawValue: procedure) else { return nil }
        switch p {
        case .null: return .inline
        case .getattr, .lookup, .access, .readlink, .read, .readdir, .readdirplus, .fsstat, .fsinfo, .pathconf:
            return .read
        case .commit:
            return .sync
        case .write:
            return .modify
        case .setattr, .create, .mkdir, .symlink, .mknod, .remove, .rmdir, .rename, .link:
            return .recordedChange
        }
    }

    package func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        guard let p = NFS3Procedure(rawValue: call.procedure) else { return .failure(.procUnavail) }
        let (start, began) = (results.writerIndex, metrics == nil ? .zero : NFS3Metrics.now())
        let outcome = try answer(p, call, context: context, results: &results, start: start, began: began)
        // A held reply is counted when it is released.
        if case .held = outcome { return outcome }
        metrics?.record(p, results: results, start: start, since: began)
        return outcome
    }

    func answer(_ p: NFS3Procedure, _ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer,
                start: Int, began: Duration) throws -> RPCProcedureOutcome {
        if p == .null {
            try call.arguments.expectXDREnd()
            return .success
        }
        guard var nfsContext = try authorize(p, call: call, context: context, results: &results) else { return .success }
        // A change's reply waits for the journal without holding this thread (see NFS3DurabilityHold).
        let durability = p.isChange ? NFS3DurabilityWait() : nil
        nfsContext.durability = durability
        let outcome = try p.runsAsCaller
            ? nfsContext.identity.apply { try dispatch(p, call: call, context: nfsContext, results: &results) }
            : dispatch(p, call: call, context: nfsContext, results: &results)
        guard let durability, let store = durability.store, case .success(let payload) = outcome else { return outcome }
        let status = results.getInteger(at: start, as: UInt32.self)
        let hold = NFS3DurabilityHold(server: server, procedure: p, store: store, point: durability.point) { [metrics] replaced in
            metrics?.record(p, status: replaced?.rawValue ?? status, since: began)
        }
        return .held(payload: payload, hold: hold)
    }

    /// GETATTR, ACCESS and LOOKUP of files whose places the handle cache holds are a few
    /// fstatat and faccessat calls on cached descriptors, and a small READ of data in the page
    /// cache through a cached descriptor is a copy: answered on the event loop. Everything
    /// else, and files the caches do not hold, go to the pool.
    package func handleWithoutBlocking(_ call: RPCCall, context: RPCCallContext,
                                      results: inout ByteBuffer) throws -> RPCProcedureOutcome? {
        guard let p = NFS3Procedure(rawValue: call.procedure) else { return nil }
        guard let metrics else { return try answerWithoutBlocking(p, call, context: context, results: &results) }
        let (start, began) = (results.writerIndex, NFS3Metrics.now())
        guard let outcome = try answerWithoutBlocking(p, call, context: context, results: &results) else { return nil }
        metrics.record(p, results: results, start: start, since: began)
        return outcome
    }

    func answerWithoutBlocking(_ p: NFS3Procedure, _ call: RPCCall, context: RPCCallContext,
                               results: inout ByteBuffer) throws -> RPCProcedureOutcome? {
        switch p {
        case .getattr, .access, .lookup, .read: break
        default: return nil
        }
        var a = call.arguments
        guard let nfsContext = try authorize(p, call: call, context: context, results: &results) else { return .success }
        let s = server
        func answer(_ results: inout ByteBuffer) throws -> RPCProcedureOutcome? {
            switch p {
            case .getattr:
                let c = try a.readNFS3GetattrCall(); try a.expectXDREnd()
                guard let reply = s.getattrFromCache(c) else { return nil }
                results.writeNFS3GetattrReply(reply)
            case .access:
                let c = try a.readNFS3AccessCall(); try a.expectXDREnd()
                guard let reply = s.accessFromCache(c, context: nfsContext) else { return nil }
                results.writeNFS3AccessReply(reply)
            case .lookup:
                let c = try a.readNFS3LookupCall(); try a.expectXDREnd()
                guard let reply = s.lookupFromCache(c) else { return nil }
                results.writeNFS3LookupReply(reply)
            default:
                let c = try a.readNFS3ReadCall(); try a.expectXDREnd()
                guard let reply = s.readFromCache(c, context: nfsContext, allocator: results.allocator()) else { return nil }
                countRead(reply)
                return .success(payload: results.writeNFS3ReadReplyPartially(reply))
            }
            return .success
        }
        return try p.runsAsCaller ? nfsContext.identity.apply { try answer(&results) } : answer(&results)
    }

    /// Every procedure but NULL starts with a file handle, which names the export whose client
    /// list and options apply to the call. Returns the call's context, or nil when the caller
    /// is refused (the refusal is then written to `results`).
    func authorize(_ p: NFS3Procedure, call: RPCCall, context: RPCCallContext,
                   results: inout ByteBuffer) throws -> NFS3CallContext? {
        var peek = call.arguments
        let fh = try peek.readNFS3FileHandle()
        switch server.authorize(fh, context: context) {
        case .success(let access):
            return NFS3CallContext(rpc: context, access: access, identity: access.identity(for: context.credentials))
        case .failure(let status):
            results.writeNFS3Status(status)
            results.writeRepeatingByte(0, count: p.emptyFailureArmSize)
            return nil
        }
    }

    func dispatch(_ p: NFS3Procedure, call: RPCCall, context: NFS3CallContext,
                  results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        var a = call.arguments
        let s = server
        switch p {
        case .null:
            try a.expectXDREnd()
        case .getattr:
            let c = try a.readNFS3GetattrCall(); try a.expectXDREnd()
            results.writeNFS3GetattrReply(s.getattr(c, context: context))
        case .setattr:
            let c = try a.readNFS3SetattrCall(); try a.expectXDREnd()
            results.writeNFS3SetattrReply(s.setattr(c, context: context))
        case .lookup:
            let c = try a.readNFS3LookupCall(); try a.expectXDREnd()
            results.writeNFS3LookupReply(s.lookup(c, context: context))
        case .access:
            let c = try a.readNFS3AccessCall(); try a.expectXDREnd()
            results.writeNFS3AccessReply(s.access(c, context: context))
        case .readlink:
            let c = try a.readNFS3ReadlinkCall(); try a.expectXDREnd()
            results.writeNFS3ReadlinkReply(s.readlink(c, context: context))
        case .read:
            let c = try a.readNFS3ReadCall(); try a.expectXDREnd()
            let reply = s.read(c, context: context, allocator: results.allocator())
            countRead(reply)
            return .success(payload: results.writeNFS3ReadReplyPartially(reply))
        case .write:
            let c = try a.readNFS3WriteCall(); try a.expectXDREnd()
            let reply = s.write(c, context: context)
            if let metrics, case .okay(let ok) = reply.result { metrics.writtenBytes.increment(by: Int(ok.count)) }
            results.writeNFS3WriteReply(reply)
        case .create:
            let c = try a.readNFS3CreateCall(); try a.expectXDREnd()
            results.writeNFS3CreateReply(s.create(c, context: context))
        case .mkdir:
            let c = try a.readNFS3MkdirCall(); try a.expectXDREnd()
            results.writeNFS3MkdirReply(s.mkdir(c, context: context))
        case .symlink:
            let c = try a.readNFS3SymlinkCall(); try a.expectXDREnd()
            results.writeNFS3SymlinkReply(s.symlink(c, context: context))
        case .mknod:
            let c = try a.readNFS3MknodCall(); try a.expectXDREnd()
            results.writeNFS3MknodReply(s.mknod(c, context: context))
        case .remove:
            let c = try a.readNFS3RemoveCall(); try a.expectXDREnd()
            results.writeNFS3RemoveReply(s.remove(c, context: context))
        case .rmdir:
            let c = try a.readNFS3RmdirCall(); try a.expectXDREnd()
            results.writeNFS3RmdirReply(s.rmdir(c, context: context))
        case .rename:
            let c = try a.readNFS3RenameCall(); try a.expectXDREnd()
            results.writeNFS3RenameReply(s.rename(c, context: context))
        case .link:
            let c = try a.readNFS3LinkCall(); try a.expectXDREnd()
            results.writeNFS3LinkReply(s.link(c, context: context))
        case .readdir:
            let c = try a.readNFS3ReaddirCall(); try a.expectXDREnd()
            results.writeNFS3ReaddirReply(s.readdir(c, context: context))
        case .readdirplus:
            let c = try a.readNFS3ReaddirplusCall(); try a.expectXDREnd()
            results.writeNFS3ReaddirplusReply(s.readdirplus(c, context: context))
        case .fsstat:
            let c = try a.readNFS3FsstatCall(); try a.expectXDREnd()
            results.writeNFS3FsstatReply(s.fsstat(c, context: context))
        case .fsinfo:
            let c = try a.readNFS3FsinfoCall(); try a.expectXDREnd()
            results.writeNFS3FsinfoReply(s.fsinfo(c, context: context))
        case .pathconf:
            let c = try a.readNFS3PathconfCall(); try a.expectXDREnd()
            results.writeNFS3PathconfReply(s.pathconf(c, context: context))
        case .commit:
            let c = try a.readNFS3CommitCall(); try a.expectXDREnd()
            results.writeNFS3CommitReply(s.commit(c, context: context))
        }
        return .success
    }
}

extension NFS3Program {
    func countRead(_ reply: NFS3ReadReply) {
        if let metrics, case .okay(let ok) = reply.result { metrics.readBytes.increment(by: ok.data.readableBytes) }
    }
}

extension ByteBuffer {
    /// An allocator for buffers that travel with this one.
    func allocator() -> ByteBufferAllocator { ByteBufferAllocator() }
}

extension NFS3Procedure {
    /// Whether the procedure changes the file system (its reply may wait for the journal).
    var isChange: Bool {
        switch self {
        case .setattr, .write, .create, .mkdir, .symlink, .mknod, .remove, .rmdir, .rename, .link, .commit: true
        default: false
        }
    }
}

extension NFS3Procedure {
    /// Whether the procedure runs under the caller's file-system identity, so that the
    /// kernel's permission checks apply to it. Not GETATTR, FSSTAT, FSINFO and PATHCONF: they
    /// read what a handle names whoever asks (knfsd checks no permission for them either), and
    /// taking on an identity and giving it back is six system calls, each replacing the
    /// thread's credentials: most of such a call's CPU. Nor READ: it takes on the caller's
    /// identity only to open the file (a descriptor cached for the caller was opened as them),
    /// and reading has no effect that depends on who reads. WRITE does run as the caller: the
    /// kernel clears a setuid or setgid bit on a write by anyone but root.
    var runsAsCaller: Bool {
        switch self {
        case .null, .getattr, .fsstat, .fsinfo, .pathconf, .read: return false
        default: return true
        }
    }
}
