import Logging
import NIOCore
import RPCTransport
import ServiceLifecycle

/// The bound RPC listeners (NFS and MOUNT on one port, the portmapper on another) and the
/// registration with a system rpcbind, if any. At the stop: unregistered, listeners and every
/// connection closed (calls still running are not answered; clients send them again to the
/// next server), so no change comes in while the journals finish.
struct RPCService: Service {
    let listeners: [RPCListener]
    let registration: RpcbindRegistration?
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.notice("shutting down")
        await registration?.unregister()
        for l in listeners { await l.close() }
    }
}
