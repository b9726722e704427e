import Foundation
import Journal
import Logging
import NFS3
import NFS3Server
import NIOConcurrencyHelpers
import NIOCore
import NLM
import ONCRPC
import Portmap
import ServiceLifecycle
import XDR

/// File locking: the lock manager (NLM) and the status monitor (NSM) served on the NFS port,
/// and this service, which makes their calls to clients (GRANTED for blocked locks, SM_NOTIFY
/// after a start) and ends the grace period. At the stop the calls still queued are dropped:
/// clients ask again, and the next start notifies them anyway.
struct LockService: Service {
    let programs: [any RPCProgram]
    let callbacks: LockCallbacks
    let peers: PeerCaller
    let grace: GracePeriod
    let graceDuration: Duration
    let locks: LockManager
    let monitor: ClientMonitor
    let logger: Logger
    /// A high-availability node: no grace period and no SM_NOTIFY at start (a standby serves
    /// no locks); both at each takeover instead (`beginTakeover`, `announceTakeover`).
    let highAvailability: Bool
    /// A high-availability active: where the status monitor's memory also goes each time it is
    /// saved (the cluster's copy in etcd), before the lock that made it change is granted.
    private let mirror: NIOLockedValueBox<(@Sendable ([UInt8]) throws -> Void)?>
    private let takeovers: AsyncStream<Void>
    private let takeoverContinuation: AsyncStream<Void>.Continuation

    /// The monitor's file: in the state directory, which is in the durable directory when
    /// there is one (a rebuilt instance still notifies the clients).
    static func monitorPath(stateDirectory: String) -> String { stateDirectory + "/nsm-state" }

    init(configuration: ServerConfiguration, nfs: NFS3Server, registry: PortmapRegistry, group: EventLoopGroup,
         logger: Logger) throws {
        let path = Self.monitorPath(stateDirectory: configuration.stateDirectory)
        let mirror = NIOLockedValueBox<(@Sendable ([UInt8]) throws -> Void)?>(nil)
        self.mirror = mirror
        let save: @Sendable ([UInt8]) throws -> Void = { bytes in
            try JournalDirectory.writeFileAtomically(path, bytes)
            try mirror.withLockedValue { $0 }?(bytes)
        }
        do {
            do {
                monitor = try ClientMonitor(saved: FileManager.default.contents(atPath: path).map { Array($0) }, save: save)
            } catch let error as XDRError {
                // Unreadable: kept aside for a look, and the server starts without it (the
                // clients that held locks are not told of this restart, and say so themselves
                // only when they next lock).
                let aside = path + ".unreadable"
                _ = rename(path, aside)
                logger.error("status monitor file unreadable; set aside, clients that held locks are not notified",
                             metadata: ["nsm.file": "\(aside)", "nsm.error": "\(error)"])
                monitor = try ClientMonitor(saved: nil, save: save)
            }
        } catch {
            throw ServerStartError(description: "status monitor file \(path): \(error)")
        }
        locks = LockManager()
        highAvailability = configuration.highAvailability != nil
        (takeovers, takeoverContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let held = !monitor.previousClients.isEmpty || !monitor.previousLocalMonitors.isEmpty
        grace = GracePeriod(active: held && configuration.lockGracePeriod > .zero && !highAvailability)
        graceDuration = configuration.lockGracePeriod
        peers = PeerCaller(group: group, logger: logger) { program, version, transport, ipv6 in
            let netid = transport == .tcp ? "tcp" : "udp"
            let binding = (ipv6 ? registry.localLookup(program: program, version: version, netid: netid + "6") : nil)
                ?? registry.localLookup(program: program, version: version, netid: netid)
            return binding.flatMap { UniversalAddress.parse($0.address)?.port }
        }
        var name = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&name, name.count) == 0 ? String(cString: name) : "swiftnfsd"
        callbacks = LockCallbacks(locks: locks, monitor: monitor, peers: peers, serverName: hostname, logger: logger)
        let nlm = NLMProgram(locks: locks, monitor: monitor, grace: grace, peers: peers, logger: logger) { handle, context in
            switch nfs.lockTarget(handle, context: context) {
            case .success(let t): return .success((LockFile(export: t.exportID, file: t.fileID), t.readOnly))
            case .failure(.stale), .failure(.badhandle): return .failure(.staleFileHandle)
            case .failure(.rofs): return .failure(.readOnlyFileSystem)
            case .failure: return .failure(.failed)
            }
        }
        programs = [nlm, NSMProgram(callbacks: callbacks)]
        self.logger = logger
    }

    func run() async throws {
        if highAvailability {
            logger.info("lock grace period and client notices at each takeover", metadata: ["nsm.state": "\(monitor.state)"])
        } else if grace.isActive {
            logger.notice("lock grace period: only reclaims of locks held before the restart are granted", metadata: [
                "nlm.grace": "\(graceDuration)", "nlm.clients": "\(monitor.previousClients.count)", "nsm.state": "\(monitor.state)",
            ])
        } else {
            logger.info("no client held locks before this start: no grace period", metadata: ["nsm.state": "\(monitor.state)"])
        }
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await peers.run() }
            tasks.addTask { await callbacks.announceGrants() }
            if grace.isActive {
                tasks.addTask { await endGrace() }
            }
            tasks.addTask {
                for await _ in takeovers { await endGrace() }
            }
            if !highAvailability { callbacks.notifyRestart() }
            try? await gracefulShutdown()
            peers.finish()
            takeoverContinuation.finish()
            tasks.cancelAll()
        }
    }

    /// A takeover, before the node serves: to its clients the server restarted. The clients
    /// the active before had on record (`cluster`: its saved memory, nil if none) become this
    /// node's, the NSM state moves on past both, locks of an earlier term here are dropped,
    /// and the grace period begins if any client is on record (only their reclaims are
    /// granted).
    func beginTakeover(cluster: [UInt8]?) {
        if let cluster {
            do {
                try monitor.adopt(cluster)
            } catch {
                logger.error("the cluster's lock clients could not be taken over; they are not notified and cannot reclaim here",
                             metadata: ["nsm.error": "\(error)"])
            }
        }
        do {
            try monitor.advance()
        } catch {
            logger.error("status monitor state not saved; clients may ignore this takeover's notices",
                         metadata: ["nsm.error": "\(error)"])
        }
        locks.releaseAll { _ in true }
        guard graceDuration > .zero, !monitor.clients.isEmpty || !monitor.localMonitors.isEmpty else { return }
        grace.begin()
        takeoverContinuation.yield()
        logger.notice("lock grace period: only reclaims are granted", metadata: [
            "nlm.grace": "\(graceDuration)", "nlm.clients": "\(monitor.clients.count)", "nsm.state": "\(monitor.state)",
        ])
    }

    /// Once the node holds the service address: SM_NOTIFY to the clients on record, so they
    /// reclaim their locks here.
    func announceTakeover() {
        callbacks.notify(monitor.clients, local: monitor.localMonitors)
    }

    /// While this node is the active, every save of the monitor's memory also goes to
    /// `destination` (nil: no more), and fails if it cannot: a client's first lock is granted
    /// only once the next active would know to notify it.
    func mirrorMonitor(to destination: (@Sendable ([UInt8]) throws -> Void)?) {
        mirror.withLockedValue { $0 = destination }
    }

    /// The node stopped being the active: its locks are the next active's to grant (clients
    /// reclaim them there).
    func stepDown() {
        locks.releaseAll { _ in true }
        grace.end()
    }

    func endGrace() async {
        guard (try? await Task.sleep(for: graceDuration)) != nil else { return }
        grace.end()
        // Clients that reclaimed nothing hold nothing: no need to notify them again.
        let holders = locks.holderAddresses
        try? monitor.forget { !holders.contains($0.address) }
        logger.notice("lock grace period over", metadata: ["nlm.locks": "\(locks.table.count)"])
    }
}
