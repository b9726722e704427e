import Logging
import NIOCore
import ONCRPC
import XDR

/// The Network Status Monitor (program 100024 version 1), in the server: SM_NOTIFY from a
/// client that restarted releases the locks it held; SM_STAT tells this host's state; SM_MON,
/// SM_UNMON and SM_UNMON_ALL serve a lock manager on this host (the kernel's, when the server
/// host mounts its own export), as rpc.statd would, and only from the loopback address.
package struct NSMProgram: RPCProgram {
    let callbacks: LockCallbacks
    var monitor: ClientMonitor { callbacks.monitor }
    var locks: LockManager { callbacks.locks }
    var logger: Logger { callbacks.logger }

    package init(callbacks: LockCallbacks) {
        self.callbacks = callbacks
    }

    package var program: UInt32 { NSM.program }
    package var versions: ClosedRange<UInt32> { NSM.version...NSM.version }

    package func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        guard let p = NSM.Procedure(rawValue: procedure) else { return nil }
        switch p {
        case .null, .stat, .simulateCrash: return .inline
        // These write the monitor's file.
        case .monitor, .unmonitor, .unmonitorAll, .notify: return .read
        }
    }

    package func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        guard let p = NSM.Procedure(rawValue: call.procedure) else { return .failure(.procUnavail) }
        var args = call.arguments
        let local = context.remoteAddress?.isLoopback == true
        switch p {
        case .null, .simulateCrash:
            try args.expectXDREnd()
        case .stat:
            _ = try args.readXDRString(limit: NSM.maxString)
            try args.expectXDREnd()
            results.writeNSMStatResult(success: true, state: monitor.state)
        case .monitor:
            let m = try args.readNSMMonitor()
            try args.expectXDREnd()
            // rpc.statd too takes SM_MON only from its own host's lock manager.
            var ok = local
            if local {
                do {
                    try monitor.addLocal(m)
                } catch {
                    logger.error("cannot record a monitor", metadata: ["nsm.host": "\(m.host)", "nsm.error": "\(error)"])
                    ok = false
                }
            }
            results.writeNSMStatResult(success: ok, state: monitor.state)
        case .unmonitor, .unmonitorAll:
            let host: String? = p == .unmonitor ? try args.readXDRString(limit: NSM.maxString) : nil
            let callback = try args.readNSMCallback()
            try args.expectXDREnd()
            if local { try? monitor.removeLocal(host: host, callback: callback) }
            results.writeXDRInt32(monitor.state)
        case .notify:
            let (host, state) = try args.readNSMStatusChange()
            try args.expectXDREnd()
            notified(host: host, state: state, from: context)
        }
        return .success
    }

    /// A host restarted: its locks here are gone (it will take them again), and the local
    /// lock managers watching it are told.
    func notified(host: String, state: Int32, from context: RPCCallContext) {
        let address = context.remoteAddress?.ipAddress ?? ""
        // Its locks are known by the name it gave and the address they came from; the notice
        // may name it either way.
        let matches: (String, String) -> Bool = { name, from in name == host || (!address.isEmpty && from == address) }
        let files = locks.releaseAll { matches($0.host, $0.address) }
        try? monitor.forget { matches($0.name, $0.address) }
        logger.notice("a client restarted; its locks are released", metadata: [
            "nsm.host": "\(host)", "nsm.address": "\(address)", "nsm.state": "\(state)", "nlm.files": "\(files)",
        ])
        callbacks.tell(monitor.localMonitors(watching: [host, address]), state: state)
    }
}
