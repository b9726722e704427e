import ArgumentParser
import Daemon
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve directories over NFSv3 (TCP and UDP), with MOUNT and a portmapper.")

    @Option(name: .customLong("export"), help: ArgumentHelp(
        "A directory to export for a quick start: to everyone, read-write, root not squashed, any source port (rw,no_root_squash,insecure,sync). Use --exports for anything else. Repeatable.",
        valueName: "DIR"))
    var exportDirectories: [String] = []

    @Option(help: ArgumentHelp("An exports file in /etc/exports syntax (exports(5)).", valueName: "FILE"))
    var exports: String?

    @Option(help: ArgumentHelp("The address to listen on (0.0.0.0 for every IPv4 address, :: for every address).",
                               valueName: "ADDRESS"))
    var listen = "0.0.0.0"

    @Option(help: "The port for NFS and MOUNT, TCP and UDP.")
    var nfsPort = 2049

    @Option(help: "The port of the embedded portmapper, TCP and UDP; 0 for none. If the port is taken (by a system rpcbind, say), the server refuses to start and names the holder; use --register-rpcbind to register with that rpcbind instead.")
    var portmapPort = 111

    @Option(help: ArgumentHelp("rpcbind's local socket, which the embedded portmapper serves too, so that local programs (rpc.statd, a local lockd) can register; \"\" for none. Only with the standard portmapper port 111.",
                               valueName: "PATH"))
    var rpcbindSocket = "/run/rpcbind.sock"

    @Flag(help: "Register with the system rpcbind on 127.0.0.1:111 instead of embedding a portmapper.")
    var registerRpcbind = false

    @Option(help: ArgumentHelp("Where the server keeps what must survive a restart: the file identity index and the handle key. Default: DURABLE-DIR/state with --durable-dir, else /var/lib/swiftnfs.",
                               valueName: "DIR"))
    var stateDir: String?

    @Option(help: ArgumentHelp("A durable directory (an EBS volume) for the write-back journal and the checkpointed copy of every export. Without it the served directories are the only copy.",
                               valueName: "DIR"))
    var durableDir: String?

    @Option(help: "Milliseconds within which records in the journal reach its stable storage.")
    var journalFlushMs = 500

    @Option(help: "Milliseconds UNSTABLE data may wait in the served file for its COMMIT before it is copied into the journal anyway (0: copied as it is written).")
    var writeBackMs = 2000

    @Option(help: "Seconds between checkpoints of the durable copy.")
    var checkpointSeconds = 30

    @Option(help: "MiB the journal may hold beyond the last checkpoint before acknowledgements slow down.")
    var maxJournalMib = 1024

    @Option(help: ArgumentHelp("Serve the server's metrics in the Prometheus text format at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9100).",
                               valueName: "ADDR:PORT"))
    var metricsListen: String?

    @Option(help: "Seconds after a start during which only clients reclaiming the locks they held may lock (when any client held locks; 0: none).")
    var lockGraceSeconds = 15

    @Option(help: "Threads for blocking file-system calls (default: 8 per core, at least 16).")
    var threads = ServerConfiguration.defaultThreads

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    @OptionGroup(title: "High availability (preview)") var ha: ServeHAOptions

    func validate() throws {
        guard !exportDirectories.isEmpty || exports != nil else {
            throw ValidationError("nothing to export: give --export DIR or --exports FILE")
        }
        guard (1...65535).contains(nfsPort) || nfsPort == 0 else { throw ValidationError("--nfs-port must be 0...65535") }
        guard (0...65535).contains(portmapPort) else { throw ValidationError("--portmap-port must be 0...65535") }
        guard (0...3600).contains(lockGraceSeconds) else { throw ValidationError("--lock-grace-seconds must be 0...3600") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        guard writeBackMs >= 0 else { throw ValidationError("--write-back-ms must not be negative") }
        if let metricsListen, Self.hostAndPort(metricsListen) == nil {
            throw ValidationError("--metrics-listen needs ADDR:PORT (e.g. 127.0.0.1:9100 or [::1]:9100): \(metricsListen)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        var entries: [ExportEntryConfig] = []
        if let exports {
            // Fail early with the file's own error; the server reads it again (and on SIGHUP).
            do {
                _ = try ExportsParser.load(path: exports)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        for dir in exportDirectories {
            var options = ExportOptions()
            options.readOnly = false
            options.rootSquash = false
            options.secure = false
            var path = dir
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            guard path.hasPrefix("/") else { throw ValidationError("--export needs an absolute path: \(dir)") }
            entries.append(ExportEntryConfig(path: path, clients: [(.everyone, options)]))
        }
        var configuration = ServerConfiguration(exports: entries)
        configuration.exportsFile = exports
        configuration.listenAddress = listen
        configuration.nfsPort = nfsPort
        configuration.portmapPort = portmapPort == 0 ? nil : portmapPort
        configuration.rpcbindSocket = portmapPort == 111 && !rpcbindSocket.isEmpty ? rpcbindSocket : nil
        configuration.lockGracePeriod = .seconds(lockGraceSeconds)
        configuration.registerWithSystemRpcbind = registerRpcbind
        configuration.stateDirectory = stateDir ?? durableDir.map { $0 + "/state" } ?? "/var/lib/swiftnfs"
        configuration.durableDirectory = durableDir
        configuration.journalFlushInterval = .milliseconds(journalFlushMs)
        configuration.writeBackDelay = .milliseconds(writeBackMs)
        configuration.metricsListen = metricsListen.flatMap(Self.hostAndPort)
        configuration.checkpointInterval = .seconds(checkpointSeconds)
        configuration.maxJournalBytes = maxJournalMib << 20
        configuration.threads = threads
        configuration.highAvailability = try ha.configuration()
        configuration.replicationPort = ha.replicationPort(durable: durableDir != nil)
        configuration.replicationFrom = ha.replicationFrom.flatMap(Self.hostAndPort)
        configuration.synchronousReplication = !ha.replicationAsync

        var logger = Logger(label: "swiftnfsd")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let server = NFSServer(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as ServerStartError {
            logger.critical("cannot start: \(error.description)")
            throw ExitCode(1)
        }
    }

    /// "127.0.0.1:9100", "[::1]:9100" or "0.0.0.0:9100" as host and port.
    static func hostAndPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
