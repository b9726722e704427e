import Foundation
import FileStore
import Journal
import Glibc
import HA
import Logging
import Mount
import NFS3
import NFS3Server
import NIOCore
import NIOPosix
import NLM
import ONCRPC
import Portmap
import Prometheus
import Replication
import RPCTransport
import ServiceLifecycle
import UnixSignals

/// A start-up problem an operator can fix, reported as one clear line rather than a crash.
package struct ServerStartError: Error, CustomStringConvertible {
    package var description: String
}

/// The whole server as one `Service`: portmapper, MOUNT and NFS on TCP and UDP. Runs until
/// graceful shutdown (SIGTERM or SIGINT through the ServiceGroup), then closes its sockets,
/// unregisters from a system rpcbind and stops its threads.
package final class NFSServer: Service, Sendable {
    package let configuration: ServerConfiguration
    let logger: Logger

    /// Where the metrics are kept for `/metrics` (used with `metricsListen` only).
    let metricsRegistry = PrometheusCollectorRegistry()

    /// The ports bound, once the server serves (for a caller that asked for port 0).
    package struct Ready: Sendable {
        package var nfsPort: Int
        package var portmapPort: Int?
        /// The replication listener's port (`ServerConfiguration.replicationPort`).
        package var replicationPort: Int? = nil
    }

    /// Yields `Ready` once the server serves, and finishes when `run` returns (at once, if the
    /// server could not start).
    package let ready: AsyncStream<Ready>
    private let readyContinuation: AsyncStream<Ready>.Continuation

    package init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        (ready, readyContinuation) = AsyncStream.makeStream(of: Ready.self)
    }

    /// The id that scopes handles to an export: `fsid=` when given, else a hash of the path,
    /// so it is the same on every start and on a rebuilt instance.
    static func exportID(_ entry: ExportEntryConfig) -> UInt64 {
        if let fsid = entry.clients.first?.1.fsid { return fsid }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in entry.path.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Raises the soft limit on open files to the hard limit: connections and cached
    /// descriptors are bounded by our own limits, not by a default of 1024.
    static func raiseFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    package func run() async throws {
        defer { readyContinuation.finish() }
        if configuration.metricsListen != nil {
            // Before any metric is made: swift-metrics reports into this registry from now on.
            MetricsEndpoint.bootstrap(metricsRegistry)
        }
        Self.raiseFileLimit()
        // Clients send the mode they want with their umask already applied.
        umask(0)
        // Opening the exports and journals blocks on the disk (a rebuild, a replay, a
        // checkpoint): on a thread of its own, never on the threads Swift's tasks run on.
        if let ha = configuration.highAvailability { try await agreeOnHandleKey(ha) }
        let (handleKey, exports, durabilities) = try await NIOThreadPool.singleton.runIfActive { try self.open() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(2, System.coreCount))
        // Two pools: calls that may wait for storage (changes held back by the journal, COMMIT)
        // never take the threads of calls that only read. Each wakes a thread only when its
        // awake ones (as many as cores) are busy or stuck (see `CallPool`).
        let pool = CallPool(threads: configuration.threads, name: "calls")
        let storagePool = CallPool(threads: configuration.threads, name: "changes")
        pool.start()
        storagePool.start()
        do {
            try await serve(exports, handleKey: handleKey, durabilities: durabilities, group: group, pools: (pool, storagePool))
        } catch {
            await pool.shutdownGracefully()
            await storagePool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
        await pool.shutdownGracefully()
        await storagePool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    func serve(_ exports: LiveExports, handleKey: SipHash24, durabilities: [Durability], group: EventLoopGroup,
               pools: (reads: any RPCCallExecutor, storage: any RPCCallExecutor)) async throws {
        let nfs = NFS3Server(exports: exports.registry, handleKey: handleKey, logger: logger)
        let mount = MountProgram(table: ExportTable(exports: exports, logger: logger))
        let registrations = Self.registrationsPath(stateDirectory: configuration.stateDirectory)
        let registry = PortmapRegistry { bindings in
            // Advisory, like rpcbind's warm-start files: no fsync.
            try? JournalDirectory.writeFileAtomically(registrations, PortmapRegistry.encode(bindings), durable: false)
        }
        let portmap = PortmapProgram(registry: registry, logger: logger, now: { UInt32(truncatingIfNeeded: time(nil)) })
        let cache = DuplicateRequestCache()
        // The entries of changes are kept in the journal that replication streams.
        let replyJournal = journalOfRecord(durabilities)
        if let replyJournal {
            let count = ReplyJournal.recover(replyJournal, into: cache)
            if count > 0 { logger.info("duplicate request cache: replies recovered from the journal", metadata: ["rpc.replies": "\(count)"]) }
        }
        let locking = try LockService(configuration: configuration, nfs: nfs, registry: registry, group: group, logger: logger)
        // A cluster node answers NFS, MOUNT and locking only while it is the active.
        let ha = configuration.highAvailability.map { ha in
            makeHAService(ha, verifier: nfs.verifier, locking: locking, exports: exports, durabilities: durabilities)
        }
        func core(_ programs: [any RPCProgram], gate: (any RPCServingGate)? = nil) -> RPCServerCore {
            var core = RPCServerCore(dispatcher: RPCDispatcher(programs: programs), cache: cache, threadPool: pools.reads,
                                     storagePool: pools.storage, logger: logger)
            core.gate = gate
            core.replyRecorder = replyJournal.map { ReplyJournal(writer: $0.writer) }
            return core
        }

        let (listeners, registration) = try await bindRPC(nfs: core([nfs3Program(nfs), mount] + locking.programs, gate: ha),
                                                          portmap: (core([portmap]), registry), group: group)
        ha?.attach([listeners[0]])
        let main = listeners[0]
        let replication: ReplicationService?
        do {
            replication = try await makeReplication(durabilities, ha: ha, cache: cache, group: group)
        } catch {
            await registration?.unregister()
            for l in listeners { await l.close() }
            throw error
        }
        let metrics: Channel?
        do {
            let state = StateMetrics(durabilities: durabilities, listeners: zip(["nfs", "portmap"], listeners).map { ($0, $1) },
                                     cache: cache, exports: exports, locking: locking, ha: ha, replication: replication)
            metrics = try await bindMetrics(group: group, collect: state.collect)
        } catch {
            await registration?.unregister()
            for l in listeners { await l.close() }
            throw error
        }
        // Trap SIGHUP before announcing readiness, so a reload right after start is not fatal.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let controlPath = ControlSocket.path(stateDirectory: configuration.stateDirectory)
        let control: ControlSocket.Listener?
        do {
            control = try await ControlSocket.bind(path: controlPath, group: group)
        } catch {
            control = nil
            logger.error("no control socket; swiftnfsd stats, checkpoint and exports reload cannot reach this server",
                         metadata: ["control.path": "\(controlPath)", "control.error": "\(error)"])
        }
        let notifier = SystemdNotifier()
        notifier.notify("READY=1\nSTATUS=serving NFSv3 on port \(main.port)")
        logger.notice("serving", metadata: [
            "nfs.port": "\(main.port)",
            "portmap.port": "\(listeners.count > 1 ? listeners[1].port : 0)",
            "nfs.exports": "\(exports.current.map(\.config.path))",
        ])
        readyContinuation.yield(Ready(nfsPort: main.port, portmapPort: listeners.count > 1 ? listeners[1].port : nil,
                                      replicationPort: replication?.port))

        // One service per part, each owning what it stops. They start together; at the stop
        // they stop one after the other, last first: systemd told, no more commands or scrapes,
        // connections closed, the statistics and indexes written, and then the journals finish
        // with no change coming in. A new part (a lock manager, a replication link) is one more
        // service in this list.
        var services: [any Service] = [
            JournalService(durabilities: durabilities, exports: exports),
            StatisticsService(exports: exports),
            locking,
            RPCService(listeners: listeners, registration: registration, logger: logger),
        ]
        // Stops before the journals finish: no frame is sent or appended after their last checkpoint.
        if let replication { services.append(replication) }
        if let ha {
            // The election stops first (an active resigns), then the node steps down.
            services += [ha, ha.election]
        }
        if let control {
            services.append(ControlService(listener: control, path: controlPath, exports: exports, durabilities: durabilities,
                                           ha: ha, notifier: notifier, logger: logger))
        }
        if let metrics { services.append(MetricsService(channel: metrics)) }
        services.append(ReloadService(hangups: hangups, exports: exports, notifier: notifier))
        try await ServiceGroup(services: services, logger: logger).run()
    }

    /// The nodes of a cluster sign handles with one key, so that a handle a client got from one
    /// active resolves on the next: the first node to start puts its key in etcd
    /// (`ClusterKeys.handleKey`), every node takes the key there into its state directory
    /// before it opens its exports. etcd must answer first: until it does, the start waits (a
    /// node that cannot reach etcd could not lead anyway).
    func agreeOnHandleKey(_ ha: HighAvailabilityConfiguration) async throws {
        let stateDirectory = configuration.stateDirectory
        let local: [UInt8]
        do {
            local = try SipHash24.handleKeyBytes(stateDirectory: stateDirectory)
        } catch {
            throw ServerStartError(description: "state directory \(stateDirectory): \(error)")
        }
        var failures = 0
        while true {
            let shared: [UInt8]
            do {
                shared = Array(try await ha.etcd.value(of: ha.keys.handleKey, settingIfAbsent: Data(local), timeout: ha.etcdTimeout))
            } catch {
                if failures % 10 == 0 {
                    logger.error("ha.handle_key: etcd does not answer; the start waits for it", metadata: ["ha.error": "\(error)"])
                }
                failures += 1
                try await Task.sleep(for: .seconds(1))
                continue
            }
            guard shared.count == 16 else {
                throw ServerStartError(description: "the cluster's handle key in etcd (\(ha.keys.handleKey)) is damaged: \(shared.count) bytes")
            }
            guard shared != local else { return }
            do {
                try SipHash24.storeHandleKey(shared, stateDirectory: stateDirectory)
            } catch {
                throw ServerStartError(description: "state directory \(stateDirectory): \(error)")
            }
            logger.notice("ha.handle_key: the cluster's key replaces this node's own; handles this node gave before are stale")
            return
        }
    }

    /// The replication of the default durable directory's journal, as the configuration asks:
    /// its listener (bound now), and the follower of an active (a cluster node follows the
    /// service address while it is not the active).
    func makeReplication(_ durabilities: [Durability], ha: HAService?, cache: DuplicateRequestCache,
                         group: EventLoopGroup) async throws -> ReplicationService? {
        let follows = configuration.replicationFrom != nil || (ha != nil && configuration.replicationPort != nil)
        guard configuration.replicationPort != nil || follows else { return nil }
        guard let durability = journalOfRecord(durabilities) else {
            throw ServerStartError(description: "replication needs a durable directory (--durable-dir)")
        }
        var source: ReplicationSource?
        var listener: ReplicationSource.Listener?
        if let port = configuration.replicationPort {
            var settings = ReplicationSource.Settings()
            settings.synchronous = configuration.synchronousReplication
            source = ReplicationSource(writer: durability.writer, directory: durability.directory, checkpointer: durability.checkpointer,
                                       settings: settings, logger: logger, mayServe: { ha?.isOpen ?? true })
            do {
                listener = try await ReplicationSource.bind(host: configuration.listenAddress, port: port, group: group)
            } catch {
                throw ServerStartError(description: "cannot listen for replication on \(configuration.listenAddress):\(port): \(error)")
            }
        }
        var follower: ReplicationFollower?
        // The active of a cluster holds the service address; its listener has this node's port.
        if follows, let from = configuration.replicationFrom.map({ ReplicationFollower.Endpoint(host: $0.host, port: $0.port) })
            ?? ha.map({ ReplicationFollower.Endpoint(host: $0.configuration.address.ip, port: listener?.channel.localAddress?.port ?? 0) }) {
            let election = ha?.election
            follower = ReplicationFollower(
                writer: durability.writer, name: configuration.highAvailability?.name ?? "standby", group: group, logger: logger,
                // An active (or a node taking over) follows no one.
                source: { ha?.isLeading == true ? nil : from },
                onStatus: { s in election?.setReplication(inSync: s.published.inSync, lagBytes: s.published.lagBytes) },
                willAppend: { try durability.noteServedTreesBehind() },
                appending: { ReplyJournal.follow($0, into: cache) }, checkpointer: durability.checkpointer)
        }
        let service = ReplicationService(source: source, listener: listener, follower: follower, writer: durability.writer)
        ha?.attach(service)
        return service
    }

    /// The journal replication streams, which also keeps the duplicate request cache's
    /// entries (`ReplyJournal`): the default durable directory's, else the first one's; nil
    /// without a durable directory.
    func journalOfRecord(_ durabilities: [Durability]) -> Durability? {
        durabilities.first(where: { $0.settings.directory == configuration.durableDirectory }) ?? durabilities.first
    }

    /// The election of a cluster node, and the service that serves or stands by as it says.
    func makeHAService(_ ha: HighAvailabilityConfiguration, verifier: WriteVerifier, locking: LockService, exports: LiveExports,
                       durabilities: [Durability]) -> HAService {
        var settings = LeaderElection.Configuration(keys: ha.keys, name: ha.name, address: ha.address.ip, ttl: ha.ttl)
        settings.callTimeout = ha.etcdTimeout
        let election = LeaderElection(configuration: settings, client: ha.etcd, clock: configuration.clock, logger: logger)
        return HAService(configuration: ha, election: election, verifier: verifier, locking: locking, exports: exports,
                         durabilities: durabilities, logger: logger)
    }

    /// The handle key, the exports (rebuilt and replayed where they need it) and their
    /// journals, each journal's copy brought up to date: everything before anything is bound.
    func open() throws -> (SipHash24, LiveExports, [Durability]) {
        let (configuration, logger) = (self.configuration, self.logger)
        let handleKey: SipHash24
        do {
            handleKey = try SipHash24.loadOrCreate(stateDirectory: configuration.stateDirectory)
        } catch {
            throw ServerStartError(description: "state directory \(configuration.stateDirectory): \(error)")
        }
        let exports = LiveExports(
            fixed: configuration.exports, exportsFile: configuration.exportsFile,
            stateDirectory: configuration.stateDirectory, handleKey: handleKey,
            defaultDurableDirectory: configuration.durableDirectory,
            openDurability: { directory, exports in
                var settings = Durability.Settings(directory: directory)
                settings.flushInterval = configuration.journalFlushInterval
                settings.checkpointInterval = configuration.checkpointInterval
                settings.limits.maxUncheckpointedBytes = configuration.maxJournalBytes
                settings.controlSocket = ControlSocket.path(stateDirectory: configuration.stateDirectory)
                settings.clock = configuration.clock
                // What waits to be copied fits in a quarter of the journal, so a COMMIT or the
                // stop can always copy it.
                settings.writeBack = WriteBackSettings(
                    delay: configuration.writeBackDelay,
                    maxBytes: min(256 << 20, UInt64(configuration.maxJournalBytes / 4)))
                settings.writeBack.clock = configuration.clock
                // Every journal syncs the served trees and identity indexes of all exports
                // before a checkpoint.
                return try Durability(settings: settings, syncServed: { [weak exports] in
                    for e in exports?.current ?? [] { try e.export.store.syncTree() }
                }, writeBack: { [weak exports] all in
                    for e in exports?.current ?? [] { try e.export.store.writeBackDue(all: all) }
                }, logger: logger)
            },
            logger: logger)
        try exports.load()
        let durabilities = exports.startedDurabilities()
        for durability in durabilities {
            // Every export of it was opened, and so rebuilt if its served tree was behind.
            if durability.servedTreesBehind { durability.servedTreesCaughtUp() }
            // Bring the copy up to date with everything recovered, before serving.
            do {
                try durability.checkpointer.checkpoint()
            } catch {
                logger.error("checkpoint at start failed; the journal keeps everything", metadata: [
                    "journal.directory": "\(durability.settings.directory)", "journal.error": "\(error)",
                ])
            }
            // From now on `swiftnfsd checkpoint` and `status` see a running server.
            durability.publishStatus()
        }
        return (handleKey, exports, durabilities)
    }

    /// Where local programs' registrations with the embedded portmapper are kept across a
    /// restart (rpcbind's warm-start file).
    static func registrationsPath(stateDirectory: String) -> String { stateDirectory + "/portmap-registrations" }

    /// Seconds from SIGTERM that the last checkpoint may take.
    static let stopSeconds = 8.0

    /// Binds NFS and MOUNT on the NFS port and the portmapper on its own (its table filled), or
    /// registers with the system rpcbind instead. The NFS listener comes first.
    func bindRPC(nfs: RPCServerCore, portmap: (core: RPCServerCore, registry: PortmapRegistry),
                 group: EventLoopGroup) async throws -> ([RPCListener], RpcbindRegistration?) {
        let main = try await bind(port: configuration.nfsPort, what: "NFS", core: nfs, group: group)
        let mappings = Self.mappings(nfsPort: main.port)
        if configuration.registerWithSystemRpcbind {
            let registration = RpcbindRegistration(mappings: mappings, group: group, logger: logger)
            do {
                try await registration.register()
            } catch {
                await main.close()
                throw ServerStartError(description: "cannot register with the system rpcbind on 127.0.0.1:111: \(error)")
            }
            return ([main], registration)
        }
        guard let portmapPort = configuration.portmapPort else { return ([main], nil) }
        do {
            let pm = try await bind(port: portmapPort, what: "portmapper", core: portmap.core, group: group)
            for m in mappings + Self.portmapMappings(port: pm.port) {
                let hosts = m.program == Portmap.program ? pm.hosts : main.hosts
                for (netid, host) in Self.netids(tcp: m.protocolNumber == Portmap.protocolTCP, hosts: hosts) {
                    portmap.registry.setOwn(RPCBinding(program: m.program, version: m.version, netid: netid,
                                                    address: UniversalAddress.make(host: host, port: Int(m.port)),
                                                    owner: "swiftnfsd"))
                }
            }
            // The local programs that registered with the last run (rpcbind -w does the same).
            if let bytes = FileManager.default.contents(atPath: Self.registrationsPath(stateDirectory: configuration.stateDirectory)),
               let saved = try? PortmapRegistry.decode(Array(bytes)) {
                portmap.registry.restore(saved)
            }
            return ([main, pm], nil)
        } catch {
            await main.close()
            throw error
        }
    }

    /// Binds `/metrics` when `--metrics-listen` asks for it.
    func bindMetrics(group: EventLoopGroup, collect: @escaping @Sendable () -> Void) async throws -> Channel? {
        guard let (host, port) = configuration.metricsListen else { return nil }
        do {
            let channel = try await MetricsEndpoint.bind(host: host, port: port, registry: metricsRegistry, group: group,
                                                         collect: collect)
            logger.notice("metrics at /metrics", metadata: ["metrics.listen": "\(host):\(channel.localAddress?.port ?? port)"])
            return channel
        } catch {
            throw ServerStartError(description: "cannot serve metrics on \(host):\(port): \(error)")
        }
    }

    func nfs3Program(_ server: NFS3Server) -> NFS3Program {
        NFS3Program(server: server, metrics: configuration.metricsListen != nil ? NFS3Metrics() : nil)
    }

    /// The rpcbind netids (with the host of their universal address) of the addresses a
    /// listener serves: IPv4 as tcp/udp, IPv6 as tcp6/udp6 (rpcbind v3/v4 clients over IPv6 ask
    /// for those), and both for the dual-stack wildcard "::". The wildcard hosts are answered
    /// with the address a call came in on.
    static func netids(tcp: Bool, hosts: [String]) -> [(String, String)] {
        let (v4, v6) = tcp ? ("tcp", "tcp6") : ("udp", "udp6")
        var out: [(String, String)] = []
        for host in hosts {
            if host == "::" && hosts.count == 1 {
                out += [(v4, "0.0.0.0"), (v6, "::")]
            } else {
                out.append((host.contains(":") ? v6 : v4, host))
            }
        }
        return out
    }

    /// Where else a listener on `listen` listens: the other family's side of the same
    /// addresses, so local programs and clients find the server by IPv4 and IPv6 alike.
    static func alsoOn(_ listen: String) -> [String] {
        switch listen {
        case "0.0.0.0": return ["::"]
        case "127.0.0.1": return ["::1"]
        case "::1": return ["127.0.0.1"]
        default: return []
        }
    }

    func bind(port: Int, what: String, core: RPCServerCore, group: EventLoopGroup) async throws -> RPCListener {
        do {
            return try await RPCListener.bind(host: configuration.listenAddress, port: port, core: core, group: group,
                                              alsoOn: Self.alsoOn(configuration.listenAddress),
                                              localSocket: what == "portmapper" ? configuration.rpcbindSocket : nil)
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            let owner = PortOwner.describe(port: port).map { " by \($0)" } ?? ""
            var advice = ""
            if what == "portmapper" {
                advice = "; stop it, or run with --register-rpcbind to register with it instead of embedding a portmapper"
            } else if owner.contains("kernel") {
                advice = "; stop nfs-kernel-server first"
            }
            throw ServerStartError(description: "\(what) port \(port) on \(configuration.listenAddress) is already in use\(owner)\(advice)")
        } catch let error as IOError where error.errnoCode == EACCES {
            throw ServerStartError(description: "\(what) port \(port): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
        } catch {
            throw ServerStartError(description: "cannot listen on \(configuration.listenAddress):\(port) for \(what): \(error)")
        }
    }

    /// What the NFS port serves, as portmap mappings: NFS v3, MOUNT v1 and v3, NLM v1, v3 and
    /// v4 and NSM v1, TCP and UDP.
    static func mappings(nfsPort: Int) -> [PortmapMapping] {
        var out: [PortmapMapping] = []
        for proto in [Portmap.protocolTCP, Portmap.protocolUDP] {
            out.append(PortmapMapping(program: NFS3.program, version: 3, protocolNumber: proto, port: UInt32(nfsPort)))
            for v: UInt32 in [1, 3] {
                out.append(PortmapMapping(program: Mount.program, version: v, protocolNumber: proto, port: UInt32(nfsPort)))
            }
            for v: UInt32 in [1, 3, 4] {
                out.append(PortmapMapping(program: NLM.program, version: v, protocolNumber: proto, port: UInt32(nfsPort)))
            }
            out.append(PortmapMapping(program: NSM.program, version: NSM.version, protocolNumber: proto, port: UInt32(nfsPort)))
        }
        return out
    }

    static func portmapMappings(port: Int) -> [PortmapMapping] {
        var out: [PortmapMapping] = []
        for proto in [Portmap.protocolTCP, Portmap.protocolUDP] {
            for v in Portmap.versions {
                out.append(PortmapMapping(program: Portmap.program, version: v, protocolNumber: proto, port: UInt32(port)))
            }
        }
        return out
    }
}
