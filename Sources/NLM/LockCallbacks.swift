import Logging
import NIOCore
import ONCRPC
import XDR

/// The calls the lock manager makes by itself: GRANTED to a client whose blocked lock is now
/// its own, and, after a start, SM_NOTIFY to every client that held locks (and the callbacks
/// of the local lock managers that watch this host) so they reclaim their locks.
package struct LockCallbacks: Sendable {
    let locks: LockManager
    let monitor: ClientMonitor
    let peers: PeerCaller
    /// The name this server gives as `caller_name` in its calls.
    let serverName: String
    let logger: Logger

    package init(locks: LockManager, monitor: ClientMonitor, peers: PeerCaller, serverName: String, logger: Logger) {
        self.locks = locks
        self.monitor = monitor
        self.peers = peers
        self.serverName = serverName
        self.logger = logger
    }

    /// Announces every grant of `locks` until the task is cancelled.
    package func announceGrants() async {
        for await grant in locks.grants {
            announce(grant)
        }
    }

    /// GRANTED (or GRANTED_MSG, for a lock that came as LOCK_MSG) with the lock as the client
    /// sent it. A client that answers "denied" no longer waits (its process gave up): the lock
    /// goes back. One that cannot be reached keeps it; it asks again by itself (the Linux
    /// client every 30 s) and is granted at once.
    func announce(_ grant: Grant) {
        let n = grant.notice
        var lock = n.lock
        lock.callerName = serverName
        var arguments = ByteBuffer()
        arguments.writeNLMLockArguments(NLMLockArguments(cookie: grant.cookie, exclusive: n.exclusive, lock: lock), .test, version: n.version)
        let locks = self.locks
        peers.send(PeerCall(
            peer: n.client, source: n.server, transport: n.transport, program: NLM.program, version: n.version,
            procedure: (n.asynchronous ? NLM.Procedure.grantedMessage : .granted).rawValue, arguments: arguments,
            what: "NLM GRANTED"
        ) { reply in
            // GRANTED_MSG is answered by a GRANTED_RES call, which confirms it.
            guard !n.asynchronous || reply == nil else { return }
            var reply = reply
            let status = try? reply?.readNLMResult().status
            locks.confirm(grant.id, accepted: status != .denied)
        })
    }

    /// After a start: SM_NOTIFY to the clients that held locks before it, from the address they
    /// knew this server by; the callbacks of local monitors watching this host.
    package func notifyRestart() {
        notify(monitor.previousClients, local: monitor.previousLocalMonitors)
    }

    /// SM_NOTIFY to `clients` (and the callbacks of `local` monitors) with the current state.
    package func notify(_ clients: [MonitoredClient], local: [NSMMonitor]) {
        for client in clients {
            // A client on this host is reached through the status monitor registered with this
            // server's portmapper, if any (else the server is its monitor: see `tell`).
            guard let peer = try? SocketAddress(ipAddress: client.address, port: 0) else { continue }
            var arguments = ByteBuffer()
            arguments.writeNSMStatusChange(host: client.serverAddress.isEmpty ? serverName : client.serverAddress, state: monitor.state)
            peers.send(PeerCall(peer: peer, source: try? SocketAddress(ipAddress: client.serverAddress, port: 0), transport: .udp,
                                program: NSM.program, version: NSM.version, procedure: NSM.Procedure.notify.rawValue,
                                arguments: arguments, what: "SM_NOTIFY") { [logger] reply in
                if reply != nil {
                    logger.info("client told of the restart", metadata: ["nsm.client": "\(client.name) (\(client.address))"])
                }
            })
        }
        tell(local, state: monitor.state)
    }

    /// Tells local lock managers (through the callback each gave with SM_MON) that the host
    /// they watch is now in `state`.
    func tell(_ monitors: [NSMMonitor], state: Int32) {
        guard let localHost = try? SocketAddress(ipAddress: "127.0.0.1", port: 0) else { return }
        for m in monitors {
            var arguments = ByteBuffer()
            arguments.writeNSMStatus(host: m.host, state: state, cookie: m.cookie)
            var call = PeerCall(peer: localHost, source: localHost, transport: .udp, program: m.callback.program,
                                version: m.callback.version, procedure: m.callback.procedure, arguments: arguments,
                                what: "SM_NOTIFY callback")
            call.reservedPort = true
            peers.send(call)
        }
    }
}
