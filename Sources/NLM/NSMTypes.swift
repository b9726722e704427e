import NIOCore
import XDR

/// The Network Status Monitor's wire types (program 100024 version 1; Open Group XNFS,
/// `sm_inter.x`): how hosts that share locks learn that one of them restarted.
package enum NSM {
    package static let program: UInt32 = 100_024
    package static let version: UInt32 = 1
    /// SM_MAXSTRLEN.
    package static let maxString = 1024
    /// The size of `priv`, the monitoring lock manager's own cookie.
    package static let privateSize = 16

    package enum Procedure: UInt32, Sendable {
        case null = 0, stat = 1, monitor = 2, unmonitor = 3, unmonitorAll = 4, simulateCrash = 5, notify = 6
    }
}

/// my_id: the local lock manager to call back (program, version, procedure) when a monitored
/// host restarts.
package struct NSMCallback: Hashable, Sendable {
    package var name: String
    package var program: UInt32
    package var version: UInt32
    package var procedure: UInt32

    package init(name: String, program: UInt32, version: UInt32, procedure: UInt32) {
        self.name = name
        self.program = program
        self.version = version
        self.procedure = procedure
    }
}

/// mon: watch `host` and call `callback` with `cookie` when it restarts.
package struct NSMMonitor: Hashable, Sendable {
    package var host: String
    package var callback: NSMCallback
    package var cookie: [UInt8]

    package init(host: String, callback: NSMCallback, cookie: [UInt8]) {
        self.host = host
        self.callback = callback
        self.cookie = cookie
    }
}

extension ByteBuffer {
    package mutating func readNSMCallback() throws -> NSMCallback {
        let name = try readXDRString(limit: NSM.maxString)
        return NSMCallback(name: name, program: try readXDRUInt32(), version: try readXDRUInt32(), procedure: try readXDRUInt32())
    }

    package mutating func writeNSMCallback(_ c: NSMCallback) {
        writeXDRString(c.name)
        writeXDRUInt32(c.program)
        writeXDRUInt32(c.version)
        writeXDRUInt32(c.procedure)
    }

    /// mon_id: the host and the callback.
    package mutating func readNSMMonitorID() throws -> (host: String, callback: NSMCallback) {
        (try readXDRString(limit: NSM.maxString), try readNSMCallback())
    }

    package mutating func readNSMMonitor() throws -> NSMMonitor {
        let (host, callback) = try readNSMMonitorID()
        let cookie = Array(try readXDRFixedOpaque(length: NSM.privateSize).readableBytesView)
        return NSMMonitor(host: host, callback: callback, cookie: cookie)
    }

    package mutating func writeNSMMonitor(_ m: NSMMonitor) {
        writeXDRString(m.host)
        writeNSMCallback(m.callback)
        writeBytes(m.cookie.prefix(NSM.privateSize) + Array(repeating: 0, count: max(0, NSM.privateSize - m.cookie.count)))
    }

    /// stat_chge (SM_NOTIFY): `host` restarted and is now in `state`.
    package mutating func readNSMStatusChange() throws -> (host: String, state: Int32) {
        (try readXDRString(limit: NSM.maxString), try readXDRInt32())
    }

    package mutating func writeNSMStatusChange(host: String, state: Int32) {
        writeXDRString(host)
        writeXDRInt32(state)
    }

    /// sm_stat_res: success (or failure) and this host's state.
    package mutating func writeNSMStatResult(success: Bool, state: Int32) {
        writeXDRUInt32(success ? 0 : 1)
        writeXDRInt32(state)
    }

    /// status: what the monitor tells the local lock manager (SM_MON's callback procedure).
    package mutating func writeNSMStatus(host: String, state: Int32, cookie: [UInt8]) {
        writeNSMStatusChange(host: host, state: state)
        writeBytes(cookie.prefix(NSM.privateSize) + Array(repeating: 0, count: max(0, NSM.privateSize - cookie.count)))
    }
}
